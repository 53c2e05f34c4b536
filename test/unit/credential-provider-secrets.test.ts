// Redaction of everything bound for stderr (DEVELOPERS.md: secrets never reach stderr or logs).
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cacheKey, readCache, writeCache } from "../../credential-provider/cache.ts";
import { addSecret, redact, safeLine } from "../../credential-provider/secrets.ts";

const test = suite("credential-provider: secrets and cache files");

test("known secrets and their base64 are replaced", () => {
  addSecret("super-secret-value-1");
  assert.is(redact("x super-secret-value-1 y"), "x [REDACTED] y");
  assert.is(redact(`t=${Buffer.from("super-secret-value-1").toString("base64")}`), "t=[REDACTED]");
});

test("JWTs and secret-looking fields are replaced even when unknown; ordinary words stay", () => {
  assert.is(redact("token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln bad"), "token [REDACTED] bad");
  assert.is(redact('{"SecretAccessKey":"abc123"}'), '{"SecretAccessKey":"[REDACTED]"}');
  assert.is(redact("<SessionToken>zzz</SessionToken>"), "<SessionToken>[REDACTED]</SessionToken>");
  assert.is(redact("password=hunter2&x=1"), "password=[REDACTED]&x=1");
  assert.is(
    redact("error parsing username and password from authorization token"),
    "error parsing username and password from authorization token",
  );
});

test("safeLine: one line", () => {
  assert.is(safeLine("a\n  b\r\nc"), "a b c");
});

test("cache files: 0600 whatever the umask, atomic, unreadable entries ignored", () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-cache-"));
  const old = process.umask(0o000);
  try {
    const key = cacheKey({ a: "b" });
    assert.is(
      writeCache(join(dir, "sub"), key, { registry: "r", username: "AWS", password: "pw", expiresAt: 2, fetchedAt: 1 }),
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
