import { createHash } from "node:crypto";
import { test } from "uvu";
import * as assert from "uvu/assert";
import { cacheKey } from "../../credential-provider/cache.ts";
import { sha256Hex } from "../../credential-provider/sha256.ts";

const nodeSha256 = (s: string) => createHash("sha256").update(s).digest("hex");

test("FIPS 180-4 / NIST example vectors: empty, abc, the two-block 448-bit message", () => {
  assert.is(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  assert.is(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.is(
    sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
  );
});

test("the same digest as node:crypto at every length around the block and padding boundaries", () => {
  for (let n = 0; n <= 200; n++) {
    const s = "x".repeat(n);
    assert.is(sha256Hex(s), nodeSha256(s), `length ${n}`);
  }
});

test("the same digest as node:crypto for random text, multi-byte UTF-8 included", () => {
  const alphabet = [...'aZ09:/.-_{}"é€😀\u0000\u07ff\uffff'];
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  for (let i = 0; i < 500; i++) {
    const chars = Array.from({ length: next() % 300 }, () => alphabet[next() % alphabet.length]);
    const s = [...chars].join("");
    assert.is(sha256Hex(s), nodeSha256(s), JSON.stringify(s));
  }
});

test("cache file names are unchanged: the first 40 hex digits of SHA-256 of the key's JSON", () => {
  const parts = { registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com", role: undefined, region: "us-west-2" };
  assert.is(cacheKey(parts), nodeSha256(JSON.stringify(parts)).slice(0, 40));
});

test.run();
