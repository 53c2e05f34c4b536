// The etcd transport (cni/store/etcd/transport.ts) against a real 3-member etcd on loopback: the
// 3.4 JSON gateway's encoding (base64, int64 as strings, a failed txn without "succeeded"),
// rotation across endpoints, the overall deadline, and auth with a cached token.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, EtcdError, prefixEnd, type ClientOptions } from "../../cni/store/etcd/transport.ts";
import { gated } from "../helpers/peers.ts";
import { enableAuth, needEtcd, startCluster, type AuthSetup, type Cluster } from "../helpers/etcd-cluster.ts";

type Ctx = { cluster: Cluster };
const test = suite<Ctx>("etcd transport");
const { define, ready } = gated(test, "etcd", needEtcd());
if (ready) {
  test.before(async (ctx) => {
    ctx.cluster = await startCluster();
  });
  test.after(async (ctx) => {
    await ctx.cluster?.stop();
  });
}

const client = (c: Cluster, o: Partial<ClientOptions> = {}) =>
  createClient({ endpoints: c.endpoints, requestTimeoutMs: 2000, deadline: Date.now() + 5000, ...o });

define("range and txn: keys and values round-trip, revisions are BigInt, a failed txn says so", async ({ cluster }) => {
  const cl = client(cluster);
  try {
    const key = "/t/ünïcode key/1";
    const put = await cl.txn({
      compare: [{ key, target: "MOD", result: "EQUAL", value: 0n }],
      success: [{ put: { key, value: '{"v":"ß"}' } }],
      failure: [{ range: { key } }],
    });
    assert.is(put.succeeded, true);
    assert.is(typeof put.revision, "bigint");
    const again = await cl.txn({
      compare: [{ key, target: "MOD", result: "EQUAL", value: 0n }],
      success: [{ put: { key, value: "x" } }],
      failure: [{ range: { key } }],
    });
    assert.is(again.succeeded, false, "the gateway leaves succeeded out; we read that as false");
    const kv = again.responses[0]?.kvs[0];
    assert.is(kv?.value, '{"v":"ß"}');
    assert.is(kv?.modRevision, put.revision);
    const r = await cl.range({ key: "/t/", rangeEnd: prefixEnd("/t/") });
    assert.is(r.kvs.length, 1);
    assert.is(r.kvs[0]?.key, key);
    const none = await cl.range({ key: "/nothing/here" });
    assert.equal(none.kvs, [], "an empty range has no kvs field at all");
    assert.is(cl.counters.txn, 2);
    assert.is(cl.counters.range, 2);
  } finally {
    cl.close();
  }
});

define("revisions beyond 2^53 survive as BigInt in compares", async ({ cluster }) => {
  const cl = client(cluster);
  try {
    // A compare against a revision no store has reached yet: must be sent exactly and fail.
    const huge = 2n ** 62n + 1n;
    const r = await cl.txn({
      compare: [{ key: "/t/ünïcode key/1", target: "MOD", result: "EQUAL", value: huge }],
      success: [],
      failure: [],
    });
    assert.is(r.succeeded, false);
    const ok = await cl.txn({
      compare: [{ key: "/t/ünïcode key/1", target: "MOD", result: "LESS", value: huge }],
      success: [],
      failure: [],
    });
    assert.is(ok.succeeded, true);
  } finally {
    cl.close();
  }
});

define("a dead first endpoint costs one failover, not the request", async ({ cluster }) => {
  await cluster.kill(0);
  await cluster.waitReady(); // the others have a leader again
  try {
    const cl = client(cluster, { firstEndpoint: 0 });
    try {
      const r = await cl.range({ key: "/t/", rangeEnd: prefixEnd("/t/") });
      assert.is(r.kvs.length, 1);
      assert.is(cl.counters.failovers, 1);
      assert.is(cl.currentEndpoint(), 1, "the endpoint that answered is remembered");
    } finally {
      cl.close();
    }
  } finally {
    await cluster.start(0);
    await cluster.waitReady();
  }
});

define("no member answers: unavailable at the deadline, naming the endpoint", async ({ cluster }) => {
  for (let i = 0; i < 3; i++) cluster.pause(i, true);
  try {
    const t0 = Date.now();
    const cl = client(cluster, { requestTimeoutMs: 400, deadline: Date.now() + 1500 });
    try {
      await cl.range({ key: "/t/x" });
      assert.unreachable("answered while every member was stopped");
    } catch (e) {
      const ms = Date.now() - t0;
      assert.instance(e, EtcdError);
      assert.is((e as EtcdError).kind, "unavailable");
      assert.match(
        (e as Error).message,
        /etcd unavailable \(\d+ attempts in 1\.\d s\): http:\/\/127\.0\.0\.1:\d+: no answer within \d+ ms/,
      );
      assert.ok(ms >= 1400 && ms < 2500, `gave up after ${ms} ms with a 1500 ms budget`);
      assert.ok(cl.counters.failovers >= 2, "tried the other members");
    } finally {
      cl.close();
    }
  } finally {
    for (let i = 0; i < 3; i++) cluster.pause(i, false);
  }
});

define("auth: a token fetched once, cached 0600, refreshed when etcd no longer knows it", async (ctx) => {
  // Auth changes the cluster for good: its own cluster, so the other tests stay unauthenticated.
  const c = await startCluster();
  try {
    const a: AuthSetup = await enableAuth(c, "berth-n1", "/berth");
    const tokenFile = join(c.dir, "token");
    const o = { auth: { username: a.username, passwordFile: a.passwordFile }, tokenFile };
    const first = client(c, o);
    await first.txn({ compare: [], success: [{ put: { key: "/berth/a", value: "1" } }], failure: [] });
    assert.is(first.counters.auth, 1);
    first.close();
    assert.is(statSync(tokenFile).mode & 0o777, 0o600);
    const token = readFileSync(tokenFile, "utf8");
    assert.ok(token.length > 0);
    assert.not.match(token, new RegExp(a.password));

    const second = client(c, o);
    assert.is((await second.range({ key: "/berth/a" })).kvs[0]?.value, "1");
    assert.is(second.counters.auth, 0, "the cached token is used");
    second.close();

    writeFileSync(tokenFile, "stale.token.1", { mode: 0o600 });
    const third = client(c, o);
    assert.is((await third.range({ key: "/berth/a" })).kvs[0]?.value, "1");
    assert.is(third.counters.auth, 1, "an invalid token is replaced");
    third.close();
    assert.is.not(readFileSync(tokenFile, "utf8"), "stale.token.1");

    const outside = client(c, o);
    try {
      await outside.range({ key: "/elsewhere" });
      assert.unreachable("read outside the role's prefix");
    } catch (e) {
      assert.instance(e, EtcdError);
      assert.is((e as EtcdError).kind, "denied");
      assert.match((e as Error).message, /permission denied/);
    } finally {
      outside.close();
    }

    writeFileSync(a.passwordFile, "wrong-password\n");
    writeFileSync(tokenFile, "");
    const wrong = client(c, o);
    try {
      await wrong.range({ key: "/berth/a" });
      assert.unreachable("a wrong password was accepted");
    } catch (e) {
      assert.is((e as EtcdError).kind, "denied");
      assert.match((e as Error).message, /authentication failed/);
      assert.not.match((e as Error).message, /wrong-password/);
      assert.not.match((e as Error).message, new RegExp(a.password));
    } finally {
      wrong.close();
    }

    const anonymous = client(c);
    try {
      await anonymous.range({ key: "/berth/a" });
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /requires authentication: set store\.auth/);
    } finally {
      anonymous.close();
    }
  } finally {
    await c.stop();
  }
  void ctx;
});

test.run();
