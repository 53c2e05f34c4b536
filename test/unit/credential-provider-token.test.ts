// GetAuthorizationToken output handling with the anchor's messages and cache duration
// (cloud-provider-aws cmd/ecr-credential-provider/main.go and main_test.go).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { SecretKeeper } from "../../credential-provider/stderr.ts";
import {
  encodeAuthorizationToken,
  halfLifeSeconds,
  tokenFromEcrOutput,
  tokenFromEcrPublicOutput,
} from "../../credential-provider/token.ts";

const test = suite("credential-provider: tokens");
const b64 = (s: string) => Buffer.from(s).toString("base64");
const keeper = (): SecretKeeper & { kept: string[] } => {
  const kept: string[] = [];
  return { kept, secret: (v) => void (v !== undefined && kept.push(v)) };
};

test("the three anchor errors and the parse error", () => {
  const k = keeper();
  const e = (r: ReturnType<typeof tokenFromEcrOutput>) => (r.ok ? "" : r.error);
  assert.is(e(tokenFromEcrOutput(undefined, k)), "response output from ECR was nil");
  assert.is(e(tokenFromEcrOutput({}, k)), "authorization data was empty");
  assert.is(e(tokenFromEcrOutput({ authorizationData: [] }, k)), "authorization data was empty");
  assert.is(e(tokenFromEcrOutput({ authorizationData: [{}] }, k)), "authorization token in response was nil");
  assert.is(
    e(tokenFromEcrOutput({ authorizationData: [{ authorizationToken: b64("foo") }] }, k)),
    "error parsing username and password from authorization token",
  );
  assert.is(e(tokenFromEcrPublicOutput(null, k)), "response output from ECR was nil");
  assert.is(e(tokenFromEcrPublicOutput({}, k)), "authorization data was empty");
  assert.is(e(tokenFromEcrPublicOutput({ authorizationData: {} }, k)), "authorization token in response was nil");
});

test("first entry used, split on the first colon, expiry kept", () => {
  const exp = new Date(Date.UTC(2030, 0, 1));
  const r = tokenFromEcrOutput(
    { authorizationData: [{ authorizationToken: b64("AWS:a:b"), expiresAt: exp }, { authorizationToken: b64("X:y") }] },
    keeper(),
  );
  assert.equal(r, { ok: true, value: { username: "AWS", password: "a:b", expiresAt: exp.getTime() } });
  const p = tokenFromEcrPublicOutput({ authorizationData: { authorizationToken: b64("AWS:pw") } }, keeper());
  assert.equal(p, { ok: true, value: { username: "AWS", password: "pw", expiresAt: undefined } });
});

test("the token is registered as a secret where it is decoded: the whole token and the password", () => {
  const token = b64("AWS:decoded-password-1");
  const k = keeper();
  tokenFromEcrOutput({ authorizationData: [{ authorizationToken: token }] }, k);
  assert.ok(k.kept.includes(token), "the raw authorizationToken");
  assert.ok(k.kept.includes("decoded-password-1"), "the password");
  const bad = b64("no-colon-in-this-token");
  const k2 = keeper();
  tokenFromEcrPublicOutput({ authorizationData: { authorizationToken: bad } }, k2);
  assert.ok(k2.kept.includes(bad), "a token that does not decode is a secret too");
});

test("encodeAuthorizationToken is the inverse of the decode: ECR's base64(user:password)", () => {
  const token = encodeAuthorizationToken({ username: "AWS", password: "pw:1" });
  assert.is(token, b64("AWS:pw:1"));
  assert.ok(!token.includes(b64("pw:1")), "base64 of the password alone never appears in the token");
});

test("cacheDuration: the anchor's half of the remaining life in whole Unix seconds", () => {
  const now = 1_000_000_000_000;
  assert.is(halfLifeSeconds(now + 12 * 3600_000, now), 6 * 3600);
  assert.is(halfLifeSeconds(now + 3001, now), 1);
  // (expiresAt.Unix() - now.Unix()) / 2: both truncated to seconds first, then Go's integer division.
  assert.is(halfLifeSeconds(now + 10_000, now + 999), 5, "10 s - 0 s of whole seconds = 10, halved 5");
  assert.is(halfLifeSeconds(now + 9_999, now + 1_000), 4, "9 s - 1 s = 8, halved 4");
  assert.is(halfLifeSeconds(now + 3_000, now), 1, "3 s halved is 1 (integer division)");
});

test("cacheDuration: none without expiry; an expired token is 0, never negative", () => {
  const now = 1_000_000_000_000;
  assert.is(halfLifeSeconds(undefined, now), 0);
  assert.is(halfLifeSeconds(now - 5000, now), 0);
});

test.run();
