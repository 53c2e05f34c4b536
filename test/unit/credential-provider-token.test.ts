// GetAuthorizationToken output handling with the anchor's messages (checklist items 4 and 9).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { halfLifeSeconds, tokenFromEcrOutput, tokenFromEcrPublicOutput } from "../../credential-provider/token.ts";

const test = suite("credential-provider: tokens");
const b64 = (s: string) => Buffer.from(s).toString("base64");

test("the three anchor errors and the parse error", () => {
  const e = (r: ReturnType<typeof tokenFromEcrOutput>) => (r.ok ? "" : r.error);
  assert.is(e(tokenFromEcrOutput(undefined)), "response output from ECR was nil");
  assert.is(e(tokenFromEcrOutput({})), "authorization data was empty");
  assert.is(e(tokenFromEcrOutput({ authorizationData: [] })), "authorization data was empty");
  assert.is(e(tokenFromEcrOutput({ authorizationData: [{}] })), "authorization token in response was nil");
  assert.is(
    e(tokenFromEcrOutput({ authorizationData: [{ authorizationToken: b64("foo") }] })),
    "error parsing username and password from authorization token",
  );
  assert.is(e(tokenFromEcrPublicOutput(null)), "response output from ECR was nil");
  assert.is(e(tokenFromEcrPublicOutput({})), "authorization data was empty");
  assert.is(e(tokenFromEcrPublicOutput({ authorizationData: {} })), "authorization token in response was nil");
});

test("first entry used, split on the first colon, expiry kept", () => {
  const exp = new Date(Date.UTC(2030, 0, 1));
  const r = tokenFromEcrOutput({
    authorizationData: [{ authorizationToken: b64("AWS:a:b"), expiresAt: exp }, { authorizationToken: b64("X:y") }],
  });
  assert.equal(r, { ok: true, value: { username: "AWS", password: "a:b", expiresAt: exp.getTime() } });
  const p = tokenFromEcrPublicOutput({ authorizationData: { authorizationToken: b64("AWS:pw") } });
  assert.equal(p, { ok: true, value: { username: "AWS", password: "pw", expiresAt: undefined } });
});

test("cacheDuration: half the remaining life in whole seconds; none without expiry; never negative", () => {
  const now = 1_000_000_000_000;
  assert.is(halfLifeSeconds(now + 12 * 3600_000, now), 6 * 3600);
  assert.is(halfLifeSeconds(undefined, now), 0);
  assert.is(halfLifeSeconds(now - 5000, now), 0);
  assert.is(halfLifeSeconds(now + 3001, now), 1);
});

test.run();
