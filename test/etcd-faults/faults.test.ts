// berth-ipam on etcd when etcd misbehaves, black box: the leader killed with -9 during a storm of
// ADD/DEL from several nodes, quorum lost, members answering slowly or not at all. After each:
// no address twice, every ADD that answered success is held (until its DEL succeeded), every ADD
// that failed left nothing (or, where etcd went away with the txn in flight, the whole ADD, which
// the runtime's DEL then frees: never a half), verify clean, node caches agreeing with etcd.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gated, needPluginUnderTest } from "../helpers/peers.ts";
import { delayProxy, needEtcd, startCluster, type Cluster } from "../helpers/etcd-cluster.ts";
import { cacheDisagreements, checkPool, storeConfig } from "../helpers/etcd-pool.ts";
import { etcdConf, ips, run, simNode, type SimNode } from "../helpers/etcd-nodes.ts";
import { nodeHash } from "../../cni/store/etcd/blocks.ts";

type Ctx = { root: string };
const test = suite<Ctx>("etcd faults");
const { define, ready } = gated(test, "etcd-faults", [...needEtcd(), needPluginUnderTest()]);
if (ready) {
  test.before((ctx) => {
    ctx.root = mkdtempSync(join(tmpdir(), "berth-etcd-faults-"));
  });
  test.after((ctx) => {
    if (ctx.root) rmSync(ctx.root, { recursive: true, force: true });
  });
}

const NET = "faultnet";
const RANGES = [[{ subnet: "10.230.0.0/16" }], [{ subnet: "fd10:230::/64" }]];

type Op = { kind: "ADD" | "DEL"; id: string; node: SimNode; code: number; msg: string; ips: string[]; ms: number };

/** What the runtime saw, replayed: which attachments must be held now, with which addresses. */
function expectedHolds(ops: Op[]): { held: Map<string, string[]>; uncertain: Set<string> } {
  const held = new Map<string, string[]>();
  const uncertain = new Set<string>();
  for (const op of [...ops].sort((a, b) => a.ms - b.ms)) {
    if (op.kind === "ADD" && op.code === 0) {
      held.set(op.id, op.ips);
      uncertain.delete(op.id);
    } else if (op.kind === "ADD") {
      held.delete(op.id);
      uncertain.add(op.id);
    } else if (op.code === 0) {
      held.delete(op.id);
      uncertain.delete(op.id);
    } else uncertain.add(op.id);
  }
  return { held, uncertain };
}

/**
 * The checks after a fault: the successful ADDs are held exactly, an attachment whose last command
 * failed has all of its addresses or none, then the runtime's DEL of those frees them; no address
 * twice, verify clean, caches agreeing.
 */
async function assertAfterFault(c: Cluster, nodes: SimNode[], ops: Op[]): Promise<{ leftByFailed: number }> {
  const { held, uncertain } = expectedHolds(ops);
  const p = await checkPool(c);
  const byId = new Map<string, string[]>();
  for (const r of p.reservations.filter((x) => x.network === NET)) {
    byId.set(r.containerID, [...(byId.get(r.containerID) ?? []), r.address]);
  }
  for (const [id, want] of held) assert.equal((byId.get(id) ?? []).sort(), [...want].sort(), `${id} answered success`);
  let leftByFailed = 0;
  for (const [id, got] of byId) {
    if (held.has(id)) continue;
    assert.ok(uncertain.has(id), `${id} is held but no ADD of it succeeded last`);
    assert.is(got.length, 2, `${id}: a whole ADD or nothing`);
    leftByFailed++;
  }
  assert.equal(p.duplicates, [], "no address held twice");
  assert.equal(p.problems, [], "verify finds nothing");
  // The runtime DELs an attachment whose ADD failed; that frees whatever a lost reply left behind.
  for (const id of uncertain) {
    const n = ops.find((o) => o.id === id)?.node;
    if (n)
      assert.is(
        (await run(etcdConf(c, n, { name: NET, ranges: RANGES }), { command: "DEL", containerId: id })).code,
        0,
      );
  }
  const after = await checkPool(c);
  for (const id of uncertain) assert.not.ok(after.reservations.some((r) => r.containerID === id && r.network === NET));
  for (const n of nodes)
    assert.equal(await cacheDisagreements(c, join(n.dir, NET), storeConfig(c)), [], `${n.name}'s cache`);
  return { leftByFailed };
}

/** A storm: `count` operations from the nodes, at most `parallel` at once, ADDs and DELs of earlier ADDs. */
async function storm(
  c: Cluster,
  nodes: SimNode[],
  count: number,
  parallel: number,
  tag: string,
  during?: (done: number) => Promise<void> | void,
): Promise<Op[]> {
  const ops: Op[] = [];
  const added: { id: string; node: SimNode }[] = [];
  let next = 0;
  let finished = 0;
  const t0 = Date.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const del = i % 3 === 2 && added.length > 0;
      const pick = del ? added.splice(Math.floor(Math.random() * added.length), 1)[0] : undefined;
      const node = pick?.node ?? nodes[i % nodes.length]!;
      const id = pick?.id ?? `${tag}${i}`;
      const started = Date.now();
      const r = await run(etcdConf(c, node, { name: NET, ranges: RANGES }), {
        command: del ? "DEL" : "ADD",
        containerId: id,
      });
      const op: Op = {
        kind: del ? "DEL" : "ADD",
        id,
        node,
        code: r.code,
        msg: String(r.json?.msg ?? ""),
        ips: ips(r),
        ms: Date.now() - t0,
      };
      (op as Op & { took: number }).took = Date.now() - started;
      ops.push(op);
      if (!del) added.push({ id, node });
      finished++;
      await during?.(finished);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ops;
}

const took = (o: Op) => (o as Op & { took: number }).took;

define("kill -9 of the etcd leader during a storm of ADD and DEL from three nodes", async ({ root }) => {
  const c = await startCluster();
  try {
    const nodes = [0, 1, 2].map((i) => simNode(root, `leader-${i}`));
    let killed = -1;
    const ops = await storm(c, nodes, 90, 6, "s", async (done) => {
      if (done === 30 && killed < 0) {
        killed = await c.leader();
        await c.kill(killed);
      }
      if (done === 70 && killed >= 0) await c.start(killed);
    });
    await c.waitReady();
    const adds = ops.filter((o) => o.kind === "ADD");
    const failed = ops.filter((o) => o.code !== 0);
    const longest = Math.max(...adds.map(took));
    process.stdout.write(
      `  leader ${killed} killed: ${ops.length} ops, ${failed.length} failed, longest ADD ${longest} ms\n`,
    );
    for (const f of failed) assert.match(f.msg, /etcd|try again/, f.msg);
    assert.ok(failed.length <= 3, `an election should cost at most a few ADDs: ${failed.map((f) => f.msg).join("; ")}`);
    await assertAfterFault(c, nodes, ops);
  } finally {
    await c.stop();
  }
});

define(
  "quorum lost: ADD is code 11 naming the endpoint, STATUS 50; after recovery nothing half-done",
  async ({ root }) => {
    const c = await startCluster();
    try {
      const nodes = [0, 1].map((i) => simNode(root, `quorum-${i}`));
      const conf = (n: SimNode) => etcdConf(c, n, { name: NET, ranges: RANGES });
      const warm = await Promise.all(nodes.map((n, i) => run(conf(n), { command: "ADD", containerId: `w${i}` })));
      const ops: Op[] = warm.map((r, i) => ({
        kind: "ADD",
        id: `w${i}`,
        node: nodes[i]!,
        code: r.code,
        msg: "",
        ips: ips(r),
        ms: 0,
      }));
      const leader = await c.leader();
      await c.kill((leader + 1) % 3);
      await c.kill((leader + 2) % 3);
      const t0 = Date.now();
      const st = await run(conf(nodes[0]!), { command: "STATUS" });
      const statusMs = Date.now() - t0;
      assert.is(st.json?.code, 50, st.stdout);
      assert.match(String(st.json?.msg), /cannot serve ADD now: etcd unavailable .*http:\/\/127\.0\.0\.1:\d+/);
      const t1 = Date.now();
      const lost = await Promise.all(
        nodes.flatMap((n, i) => [0, 1, 2].map((k) => run(conf(n), { command: "ADD", containerId: `q${i}${k}` }))),
      );
      const addMs = Date.now() - t1;
      for (const [j, r] of lost.entries()) {
        assert.is(r.json?.code, 11, r.stdout);
        assert.match(String(r.json?.msg), /etcd unavailable .*: http:\/\/127\.0\.0\.1:\d+: /);
        ops.push({
          kind: "ADD",
          id: `q${Math.floor(j / 3)}${j % 3}`,
          node: nodes[Math.floor(j / 3)]!,
          code: 1,
          msg: "",
          ips: [],
          ms: 1,
        });
      }
      process.stdout.write(`  quorum lost: STATUS 50 after ${statusMs} ms; 6 ADDs all code 11 after ${addMs} ms\n`);
      await c.start((leader + 1) % 3);
      await c.start((leader + 2) % 3);
      await c.waitReady();
      const back = await run(conf(nodes[0]!), { command: "ADD", containerId: "after" });
      assert.is(back.code, 0, back.stdout);
      ops.push({ kind: "ADD", id: "after", node: nodes[0]!, code: 0, msg: "", ips: ips(back), ms: 2 });
      assert.is((await run(conf(nodes[1]!), { command: "STATUS" })).code, 0);
      const r = await assertAfterFault(c, nodes, ops);
      process.stdout.write(`  ADDs that failed during the outage and landed later: ${r.leftByFailed}\n`);
    } finally {
      await c.stop();
    }
  },
);

define("etcd answering slowly, and a member that never answers: ADD and DEL still succeed", async ({ root }) => {
  const c = await startCluster();
  const proxies = await Promise.all(c.members.map((m) => delayProxy(m.clientUrl, 120)));
  try {
    const slow: Cluster = { ...c, endpoints: proxies.map((p) => p.url) };
    const nodes = [0, 1].map((i) => simNode(root, `slow-${i}`));
    const ops = await storm(slow, nodes, 16, 4, "slow");
    assert.ok(
      ops.every((o) => o.code === 0),
      ops.map((o) => o.msg).join("; "),
    );
    // The endpoint a fresh node tries first hangs: its first request times out after 2 s and moves
    // on; the node remembers the one that answered.
    const fresh = simNode(root, "slow-fresh");
    const firstTried = Number(nodeHash(fresh.name) % 3n);
    proxies[firstTried]?.setDelay(Number.POSITIVE_INFINITY);
    const hung: Cluster = { ...c, endpoints: c.endpoints.map((e, i) => (i === firstTried ? proxies[i]!.url : e)) };
    const t0 = Date.now();
    const r = await run(etcdConf(hung, fresh, { name: NET, ranges: RANGES }), { command: "ADD", containerId: "h1" });
    const first = Date.now() - t0;
    assert.is(r.code, 0, r.stdout);
    // 5 s over 3 endpoints: each request may take 1.67 s (never more than 2 s).
    assert.ok(first >= 1600, `the hung member cost its request timeout (${first} ms)`);
    const t1 = Date.now();
    const r2 = await run(etcdConf(hung, fresh, { name: NET, ranges: RANGES }), { command: "ADD", containerId: "h2" });
    const second = Date.now() - t1;
    assert.is(r2.code, 0, r2.stdout);
    assert.ok(second < 1600, `the next ADD went to the member that answered (${second} ms)`);
    process.stdout.write(
      `  hung first endpoint: first ADD ${first} ms, the next ${second} ms (the answering one is remembered)\n`,
    );
    ops.push(
      { kind: "ADD", id: "h1", node: fresh, code: 0, msg: "", ips: ips(r), ms: 1e9 },
      { kind: "ADD", id: "h2", node: fresh, code: 0, msg: "", ips: ips(r2), ms: 1e9 + 1 },
    );
    await assertAfterFault(c, [...nodes, fresh], ops);
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
    await c.stop();
  }
});

test.run();
