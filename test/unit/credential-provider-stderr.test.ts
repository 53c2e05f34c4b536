// The stderr sink every message goes through: secrets never reach stderr or logs, in any
// encoding, and the kubelet sees one line. Cache files are mode 0600.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cacheKey, readCache, writeCache } from "../../credential-provider/cache.ts";
import { encodings, oneLine, redact, stderrSink } from "../../credential-provider/stderr.ts";
import { encodeAuthorizationToken, keepToken } from "../../credential-provider/token.ts";

const test = suite("credential-provider: stderr sink, secrets and cache files");

function sink() {
  const written: string[] = [];
  return { stderr: stderrSink("prog", (t) => written.push(t)), written };
}

test("a registered secret is replaced raw, base64 (padded or not), base64url, percent- and JSON-escaped", () => {
  const secret = 'se/cr+et?"value"~1';
  const { stderr, written } = sink();
  stderr.secret(secret);
  const forms = [
    secret,
    Buffer.from(secret).toString("base64"),
    Buffer.from(secret).toString("base64").replace(/=+$/, ""),
    Buffer.from(secret).toString("base64url"),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
  ];
  for (const f of forms) stderr.warn(`x ${f} y`);
  stderr.flush();
  assert.is(written.length, forms.length);
  for (const [i, line] of written.entries()) {
    assert.is(line, "prog: x [REDACTED] y\n", `form ${i}`);
  }
});

test("a token registered with keepToken is replaced as ECR sends it, base64('AWS:' + password)", () => {
  const t = { username: "AWS", password: "cached-password-42" };
  const { stderr, written } = sink();
  keepToken(stderr, t);
  stderr.fail(`token ${encodeAuthorizationToken(t)} expired; password ${t.password}`);
  assert.equal(written, ["prog: token [REDACTED] expired; password [REDACTED]\n"]);
});

test("fail: one line with the held warnings joined; flush afterwards writes nothing more", () => {
  const { stderr, written } = sink();
  stderr.warn("warning: first");
  stderr.warn("warning: second\nhalf");
  assert.is(stderr.fail("it broke\n  badly"), 1);
  stderr.flush();
  assert.equal(written, ["prog: it broke badly (warning: first; warning: second half)\n"]);
});

test("print: text for a person keeps its lines, secrets removed", () => {
  const { stderr, written } = sink();
  stderr.secret("printed-secret");
  stderr.print("a: printed-secret\nb: 2\n");
  assert.equal(written, ["a: [REDACTED]\nb: 2\n"]);
});

test("values too short to be a secret are not registered (they would redact ordinary words)", () => {
  assert.equal(encodings("abc"), []);
  const { stderr, written } = sink();
  stderr.secret("AWS");
  stderr.secret(undefined);
  stderr.fail("AWS said no");
  assert.equal(written, ["prog: AWS said no\n"]);
});

test("JWTs and secret-looking fields are replaced even when unknown; ordinary words stay", () => {
  assert.is(redact("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln bad", []), "token [REDACTED] bad");
  assert.is(redact('{"SecretAccessKey":"abc123"}', []), '{"SecretAccessKey":"[REDACTED]"}');
  assert.is(redact("<SessionToken>zzz</SessionToken>", []), "<SessionToken>[REDACTED]</SessionToken>");
  assert.is(redact("password=hunter2&x=1", []), "password=[REDACTED]&x=1");
  assert.is(
    redact("error parsing username and password from authorization token", []),
    "error parsing username and password from authorization token",
  );
});

test("oneLine", () => {
  assert.is(oneLine("a\n  b\r\nc"), "a b c");
});

test("cache files: 0600 whatever the umask, atomic, unreadable entries ignored", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cache-"));
  const old = process.umask(0o000);
  try {
    const key = cacheKey({ a: "b" });
    assert.is(
      writeCache(
        join(dir, "sub"),
        key,
        { registry: "r", username: "AWS", password: "pw", expiresAt: 2, fetchedAt: 1 },
        { maxEntries: 10, now: 1 },
      ),
      undefined,
    );
    const file = join(dir, "sub", `${key}.json`);
    assert.is(statSync(file).mode & 0o777, 0o600);
    assert.is(statSync(join(dir, "sub")).mode & 0o777, 0o700);
    assert.equal(readCache(join(dir, "sub"), key), {
      registry: "r",
      username: "AWS",
      password: "pw",
      expiresAt: 2,
      fetchedAt: 1,
    });
    assert.ok(JSON.parse(readFileSync(file, "utf8")));
    assert.is(readCache(join(dir, "sub"), cacheKey({ a: "c" })), undefined);
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
