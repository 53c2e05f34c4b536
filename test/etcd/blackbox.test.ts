// berth-ipam on the etcd store, black box: the built binary exec'ed as several simulated nodes
// (each its own `store.node` and dataDir) against one pool on a real 3-member etcd. After every
// scenario: no address twice, verify clean, every node cache agreeing with etcd.
import { clusterSuite } from "../helpers/etcd-suite.ts";
import * as assert from "uvu/assert";
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { adminClient, migrateLocal, removeNode } from "../../cni/store/etcd/admin.ts";
import { CACHE_FILE } from "../../cni/store/etcd/cache.ts";
import { needPluginUnderTest } from "../helpers/peers.ts";
import { enableAuth, needEtcd, startCluster, type Cluster } from "../helpers/etcd-cluster.ts";
import { cacheDisagreements, checkPool, storeConfig } from "../helpers/etcd-pool.ts";
import { etcdConf, localConf, ips, run, simNode, start, stdoutIps, type SimNode } from "../helpers/etcd-nodes.ts";
import { netconf } from "../helpers/cni.ts";

const { test, define } = clusterSuite("etcd black box", "bb", [...needEtcd(), needPluginUnderTest()]);

let nets = 0;
const newNet = () => `bbnet${++nets}`;

async function assertSound(c: Cluster, nodes: SimNode[], networks: string[], prefix = "/berth"): Promise<void> {
  const conf = storeConfig(c, { prefix });
  const p = await checkPool(c, conf);
  assert.equal(p.duplicates, [], "no address held twice");
  assert.equal(p.problems, [], "verify finds nothing");
  for (const n of nodes) {
    for (const net of networks)
      assert.equal(await cacheDisagreements(c, join(n.dir, net), conf), [], `${n.name}'s cache`);
  }
}

/** Reservations in etcd for one network, as "containerID address" lines. */
async function held(c: Cluster, net: string, prefix = "/berth"): Promise<string[]> {
  const p = await checkPool(c, storeConfig(c, { prefix }));
  return p.reservations
    .filter((r) => r.network === net)
    .map((r) => `${r.containerID} ${r.address}`)
    .sort();
}

define("nodes adding at once, many per node: distinct addresses, every success recorded", async ({ cluster, root }) => {
  const net = newNet();
  const nodes = Array.from({ length: 4 }, (_, i) => simNode(root, `worker-${i}`));
  const ranges = [[{ subnet: "10.210.0.0/16" }], [{ subnet: "fd10:210::/64" }]];
  const ledger = new Map<string, string[]>();
  const storm = async (tag: string) =>
    Promise.all(
      nodes.flatMap((n) =>
        Array.from({ length: 10 }, async (_, i) => {
          const id = `${n.name}-${tag}${i}`;
          const r = await run(etcdConf(cluster, n, { name: net, ranges }), { command: "ADD", containerId: id });
          assert.is(r.code, 0, `${id}: ${r.stdout}`);
          assert.is(ips(r).length, 2, "one address of each family");
          ledger.set(id, ips(r));
        }),
      ),
    );
  await storm("a");
  // DEL half, concurrently with a second storm of ADDs.
  await Promise.all([
    ...nodes.flatMap((n) =>
      Array.from({ length: 5 }, async (_, i) => {
        const id = `${n.name}-a${i * 2}`;
        const r = await run(etcdConf(cluster, n, { name: net, ranges }), { command: "DEL", containerId: id });
        assert.is(r.code, 0, r.stdout);
        ledger.delete(id);
      }),
    ),
    storm("b"),
  ]);
  const all = [...ledger.values()].flat();
  assert.is(new Set(all).size, all.length, "no address handed out twice");
  const expected = [...ledger].flatMap(([id, a]) => a.map((ip) => `${id} ${ip}`)).sort();
  assert.equal(await held(cluster, net), expected, "etcd holds exactly what the successful ADDs returned");
  await assertSound(cluster, nodes, [net]);
});

define(
  "dual-stack is one transaction: a second family that fails leaves the first untaken",
  async ({ cluster, root }) => {
    const net = newNet();
    const a = simNode(root, "dual-a");
    const b = simNode(root, "dual-b");
    const ranges = [[{ subnet: "10.211.0.0/24" }], [{ subnet: "fd10:211::/64" }]];
    const first = await run(etcdConf(cluster, a, { name: net, ranges }), { command: "ADD", containerId: "a1" });
    assert.is(first.code, 0);
    const v6 = ips(first)[1]!;
    const clash = await run(etcdConf(cluster, b, { name: net, ranges, extra: { args: { cni: { ips: [v6] } } } }), {
      command: "ADD",
      containerId: "b1",
    });
    assert.is(clash.code, 1);
    assert.is(clash.json?.code, 999);
    assert.match(String(clash.json?.msg), /failed to allocate for range 1: requested IP address .* is not available/);
    assert.equal(
      await held(cluster, net),
      [`a1 ${ips(first)[0]}`, `a1 ${v6}`].sort(),
      "nothing of b1, not even its IPv4",
    );
    await assertSound(cluster, [a, b], [net]);
  },
);

define(
  "requested addresses from CNI_ARGS, args and runtimeConfig, also in another node's block",
  async ({ cluster, root }) => {
    const net = newNet();
    const owner = simNode(root, "req-owner");
    const other = simNode(root, "req-other");
    const ranges = [[{ subnet: "10.212.0.0/24" }]];
    const first = await run(etcdConf(cluster, owner, { name: net, ranges }), { command: "ADD", containerId: "o1" });
    const base = ips(first)[0]!.split(".").map(Number);
    const near = (k: number) => `10.212.0.${(base[3] ?? 0) + k}`; // inside the owner's block
    const viaArgs = await run(etcdConf(cluster, other, { name: net, ranges }), {
      command: "ADD",
      containerId: "r1",
      args: `IgnoreUnknown=1;IP=${near(5)}`,
    });
    assert.equal(ips(viaArgs), [near(5)], viaArgs.stdout);
    const viaCniArgs = await run(
      etcdConf(cluster, other, { name: net, ranges, extra: { args: { cni: { ips: [near(6)] } } } }),
      {
        command: "ADD",
        containerId: "r2",
      },
    );
    assert.equal(ips(viaCniArgs), [near(6)]);
    const viaRuntime = await run(
      etcdConf(cluster, other, { name: net, ranges, extra: { runtimeConfig: { ips: [`${near(7)}/24`] } } }),
      {
        command: "ADD",
        containerId: "r3",
      },
    );
    assert.equal(ips(viaRuntime), [near(7)]);
    const taken = await run(etcdConf(cluster, other, { name: net, ranges }), {
      command: "ADD",
      containerId: "r4",
      args: `IP=${ips(first)[0]}`,
    });
    assert.is(taken.json?.code, 999);
    assert.match(String(taken.json?.msg), /requested IP address 10\.212\.0\.\d+ is not available in range set/);
    // The owner keeps allocating in its block around the taken addresses.
    const owned = await Promise.all(
      [1, 2, 3, 4, 5, 6, 7].map((i) =>
        run(etcdConf(cluster, owner, { name: net, ranges }), { command: "ADD", containerId: `o${i + 1}` }),
      ),
    );
    const got = owned.flatMap(ips);
    for (const k of [5, 6, 7]) assert.not.ok(got.includes(near(k)), `${near(k)} handed out again`);
    await assertSound(cluster, [owner, other], [net]);
  },
);

define("exhaustion: code 999 as host-local words it, STATUS 50, and a DEL makes room", async ({ cluster, root }) => {
  const net = newNet();
  const a = simNode(root, "full-a");
  const b = simNode(root, "full-b");
  // 10.213.0.0/28 in /30 blocks: 13 usable addresses (.1 is the gateway, .15 broadcast).
  const ranges = [[{ subnet: "10.213.0.0/28" }]];
  const store = { blockSize: 30 };
  const confA = etcdConf(cluster, a, { name: net, ranges, store });
  const confB = etcdConf(cluster, b, { name: net, ranges, store });
  const results = await Promise.all(
    Array.from({ length: 16 }, (_, i) => run(i % 2 ? confB : confA, { command: "ADD", containerId: `c${i}` })),
  );
  for (const r of results.filter((x) => x.code !== 0)) {
    assert.is(r.json?.code, 999, r.stdout);
    assert.match(String(r.json?.msg), /no IP addresses available in range set: 10\.213\.0\.1-10\.213\.0\.14/);
  }
  // Strict affinity: a node whose blocks are full fails even while the other has room. Top up.
  let extra = 0;
  for (const conf of [confA, confB]) {
    while ((await run(conf, { command: "ADD", containerId: `top${extra}` })).code === 0) extra++;
  }
  assert.is(results.filter((r) => r.code === 0).length + extra, 13, "every usable address, once");
  assert.is((await held(cluster, net)).length, 13);
  for (const conf of [confA, confB]) {
    const st = await run(conf, { command: "STATUS" });
    assert.is(st.json?.code, 50, st.stdout);
  }
  const victim = results.findIndex((r) => r.code === 0);
  const owner = victim % 2 ? confB : confA;
  const other = victim % 2 ? confA : confB;
  assert.is((await run(owner, { command: "DEL", containerId: `c${victim}` })).code, 0);
  assert.is((await run(other, { command: "STATUS" })).json?.code, 50, "still full for the other node (no borrowing)");
  assert.is((await run(owner, { command: "STATUS" })).code, 0, "the freed address is the owner's to give");
  const again = await run(owner, { command: "ADD", containerId: "late" });
  assert.is(again.code, 0, again.stdout);
  await assertSound(cluster, [a, b], [net]);
});

define("GC releases only this node's attachments on this network", async ({ cluster, root }) => {
  const netX = newNet();
  const netY = newNet();
  const a = simNode(root, "gc-a");
  const b = simNode(root, "gc-b");
  const conf = (n: SimNode, net: string) =>
    etcdConf(cluster, n, { name: net, ranges: [[{ subnet: "10.214.0.0/24" }]] });
  for (const id of ["a1", "a2", "a3"])
    assert.is((await run(conf(a, netX), { command: "ADD", containerId: id })).code, 0);
  assert.is((await run(conf(a, netY), { command: "ADD", containerId: "a9" })).code, 0);
  assert.is((await run(conf(b, netX), { command: "ADD", containerId: "b1" })).code, 0);
  const gcConf = { ...conf(a, netX), "cni.dev/valid-attachments": [{ containerID: "a1", ifname: "eth0" }] };
  const gc = await run(gcConf, { command: "GC" });
  assert.is(gc.code, 0, gc.stdout);
  const x = (await held(cluster, netX)).map((l) => l.split(" ")[0]);
  assert.equal(x, ["a1", "b1"], "a2 and a3 released; b1 is another node's");
  assert.equal(
    (await held(cluster, netY)).map((l) => l.split(" ")[0]),
    ["a9"],
    "another network untouched",
  );
  await assertSound(cluster, [a, b], [netX, netY]);
});

define("repeated ADD, CHECK, exclude, routes, and DEL after the ranges changed", async ({ cluster, root }) => {
  const net = newNet();
  const n = simNode(root, "semantics");
  const routes = [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16", gw: "10.215.0.1" }];
  const ranges = [[{ subnet: "10.215.0.0/25" }]]; // two /26 blocks, an exclusion in each
  const exclude = ["10.215.0.2", "10.215.0.10/31", "10.215.0.80/28"];
  const conf = etcdConf(cluster, n, { name: net, ranges, ipam: { routes, exclude } });
  const first = await run(conf, { command: "ADD", containerId: "c1" });
  assert.equal(first.json?.routes, routes);
  const again = await run(conf, { command: "ADD", containerId: "c1" });
  assert.equal(ips(again), ips(first), "idempotent");
  const check = await run({ ...conf, prevResult: first.json }, { command: "CHECK", containerId: "c1" });
  assert.is(check.code, 0, check.stdout);
  const many = [];
  for (let i = 0; i < 25; i++) many.push(ips(await run(conf, { command: "ADD", containerId: `m${i}` }))[0]);
  for (const ip of many) {
    const last = Number(ip?.split(".")[3]);
    assert.ok(![2, 10, 11].includes(last) && (last < 80 || last > 95), `${ip} is excluded`);
  }
  const changed = etcdConf(cluster, n, { name: net, ranges: [[{ subnet: "10.99.0.0/24" }]] });
  assert.is((await run(changed, { command: "DEL", containerId: "c1" })).code, 0);
  const broken = { ...conf, ipam: { ...(conf.ipam as object), ranges: "not a list" } };
  assert.is((await run(broken, { command: "DEL", containerId: "m0" })).code, 0, "DEL needs only the store section");
  const left = await held(cluster, net);
  assert.not.ok(left.some((l) => l.startsWith("c1 ") || l.startsWith("m0 ")));
  const unknown = await run(conf, { command: "CHECK", containerId: "c1" });
  assert.is(unknown.json?.code, 3);
  await assertSound(cluster, [n], [net]);
});

define("a broken store section is code 7 for every command, naming the key", async ({ cluster, root }) => {
  const n = simNode(root, "badconf");
  const base = etcdConf(cluster, n, { name: newNet(), ranges: [[{ subnet: "10.216.0.0/24" }]] });
  const ipam = base.ipam as Record<string, unknown>;
  const bad = [
    [{ type: "etcd3" }, /unknown store type "etcd3"/],
    [{ ...(ipam.store as object), endpoint: "x" }, /ipam\.store: unknown key "endpoint"/],
    [{ type: "local", prefix: "/x" }, /unknown key "prefix" for the local store/],
    [{ ...(ipam.store as object), endpoints: "http://127.0.0.1:1" }, /endpoints must be a non-empty list/],
  ] as const;
  for (const [store, re] of bad) {
    for (const command of ["ADD", "DEL", "CHECK", "GC", "STATUS"]) {
      const conf = { ...base, ipam: { ...ipam, store }, "cni.dev/valid-attachments": [] };
      const r = await run(conf, { command });
      assert.is(r.json?.code, 7, `${command} ${JSON.stringify(store)}: ${r.stdout}`);
      assert.match(String(r.json?.msg), re);
    }
  }
  const local = await run(netconf({ dataDir: n.dir, subnet: "10.217.0.0/24", store: { type: "local" } }), {
    command: "ADD",
  });
  assert.is(local.code, 0, '{"type": "local"} is the local store');
});

define(
  "node removal: a dead node's addresses go to others, its zombie cannot write on stale state",
  async ({ cluster, root }) => {
    const net = newNet();
    const lost = simNode(root, "lost");
    const live = simNode(root, "live");
    const ranges = [[{ subnet: "10.218.0.0/26" }]]; // one block
    const lostConf = etcdConf(cluster, lost, { name: net, ranges });
    const liveConf = etcdConf(cluster, live, { name: net, ranges });
    const had = await Promise.all([1, 2, 3].map((i) => run(lostConf, { command: "ADD", containerId: `l${i}` })));
    assert.ok(had.every((r) => r.code === 0));
    copyFileSync(join(lost.dir, net, CACHE_FILE), join(root, "stale-cache"));
    assert.is(
      (await run(liveConf, { command: "ADD", containerId: "v0" })).json?.code,
      999,
      "the only block is the lost node's",
    );
    const conf = storeConfig(cluster);
    const client = adminClient(conf);
    try {
      const r = await removeNode(client, conf, "lost");
      assert.is(r.attachmentsReleased, 3);
    } finally {
      client.close();
    }
    const taken = await Promise.all([1, 2, 3].map((i) => run(liveConf, { command: "ADD", containerId: `v${i}` })));
    assert.equal(taken.flatMap(ips).sort(), had.flatMap(ips).sort(), "the freed addresses, right away");
    for (const suffix of ["", "-wal", "-shm"]) rmSync(join(lost.dir, net, `${CACHE_FILE}${suffix}`), { force: true });
    copyFileSync(join(root, "stale-cache"), join(lost.dir, net, CACHE_FILE));
    const zombie = await run(lostConf, { command: "ADD", containerId: "l4" });
    assert.is(zombie.json?.code, 999, `the zombie got nothing: ${zombie.stdout}`);
    assert.equal(
      (await held(cluster, net)).map((l) => l.split(" ")[0]),
      ["v1", "v2", "v3"],
    );
    await assertSound(cluster, [lost, live], [net]);
  },
);

define("migration: a node's local reservations move to etcd before the network switches", async ({ cluster, root }) => {
  const net = newNet();
  const m = simNode(root, "migrating");
  const other = simNode(root, "neighbour");
  const ranges = [[{ subnet: "10.219.0.0/24" }]];
  const local = localConf(m, net, ranges);
  const old: string[] = [];
  for (const i of [1, 2, 3, 4]) {
    const r = await run(local, { command: "ADD", containerId: `p${i}` });
    assert.is(r.code, 0, r.stdout);
    old.push(...ips(r));
  }
  const r = await migrateLocal(storeConfig(cluster, { node: "migrating" }), net, m.dir, join(m.dir, net));
  assert.equal(r, { copied: 4, present: 0, conflicts: [] });
  const after = await Promise.all(
    [1, 2, 3, 4, 5, 6].flatMap((i) => [
      run(etcdConf(cluster, m, { name: net, ranges }), { command: "ADD", containerId: `q${i}` }),
      run(etcdConf(cluster, other, { name: net, ranges }), { command: "ADD", containerId: `n${i}` }),
    ]),
  );
  for (const ip of after.flatMap(ips)) assert.not.ok(old.includes(ip), `${ip} is a migrated pod's`);
  const del = await run(etcdConf(cluster, m, { name: net, ranges }), { command: "DEL", containerId: "p1" });
  assert.is(del.code, 0);
  assert.not.ok(
    (await held(cluster, net)).some((l) => l.startsWith("p1 ")),
    "a migrated pod's DEL on etcd frees it",
  );
  await assertSound(cluster, [m, other], [net]);
});

define("TLS with client certificates and a password user limited to the prefix; no secret leaks", async ({ root }) => {
  const c = await startCluster({ tls: true, clientCertAuth: true });
  try {
    const auth = await enableAuth(c, "berth-worker-1", "/berth");
    const n = simNode(root, "secure");
    const net = newNet();
    const store = { auth: { username: auth.username, passwordFile: auth.passwordFile } };
    const conf = etcdConf(c, n, { name: net, ranges: [[{ subnet: "10.220.0.0/24" }]], store });
    const outs = [];
    for (const command of ["ADD", "ADD", "CHECK", "STATUS", "DEL"]) {
      const r = await run(command === "CHECK" ? { ...conf, prevResult: outs[0]?.json } : conf, {
        command,
        containerId: "s1",
      });
      assert.is(r.code, 0, `${command}: ${r.stdout}`);
      outs.push(r);
    }
    const tokenFiles = readdirSync(n.dir).filter((f) => f.startsWith(".berth-etcd-token-"));
    assert.is(tokenFiles.length, 1);
    assert.is(statSync(join(n.dir, tokenFiles[0]!)).mode & 0o777, 0o600);
    const token = readFileSync(join(n.dir, tokenFiles[0]!), "utf8");
    const outside = etcdConf(c, n, {
      name: net,
      ranges: [[{ subnet: "10.220.0.0/24" }]],
      store: { ...store, prefix: "/other" },
    });
    const denied = await run(outside, { command: "ADD", containerId: "s2" });
    assert.is(denied.json?.code, 11);
    assert.match(String(denied.json?.msg), /permission denied/);
    outs.push(denied);
    const wrongPw = join(root, "wrong-pw");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(wrongPw, "not-the-password\n");
    const wrong = await run(
      etcdConf(c, simNode(root, "wrongpw"), {
        name: net,
        ranges: [[{ subnet: "10.220.0.0/24" }]],
        store: { auth: { username: auth.username, passwordFile: wrongPw } },
      }),
      { command: "ADD", containerId: "s3" },
    );
    assert.match(String(wrong.json?.msg), /authentication failed/);
    outs.push(wrong);
    for (const o of outs) {
      for (const secret of [auth.password, token, "not-the-password"]) {
        assert.not.ok(o.stdout.includes(secret), "no secret on stdout");
        assert.not.ok(o.stderr.includes(secret), "no secret on stderr");
      }
    }
    const files = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)],
      );
    for (const f of files(n.dir)) {
      const body = readFileSync(f).toString("latin1");
      assert.not.ok(body.includes(auth.password), `${f} holds the password`);
      if (!f.endsWith(tokenFiles[0]!)) assert.not.ok(body.includes(token), `${f} holds the token`);
    }
    await assertSound(c, [n], [net]);
  } finally {
    await c.stop();
  }
});

define("kill -9 of plugin processes at random instants: each ADD all or nothing", async ({ cluster, root }) => {
  const net = newNet();
  const nodes = [simNode(root, "kill-a"), simNode(root, "kill-b")];
  const ranges = [[{ subnet: "10.221.0.0/16" }], [{ subnet: "fd10:221::/64" }]];
  // How long one ADD takes here, so kills land across its whole life (start-up, lock, txn, output).
  const t0 = Date.now();
  await run(etcdConf(cluster, nodes[0]!, { name: net, ranges }), { command: "ADD", containerId: "probe" });
  const life = Math.max(20, Date.now() - t0);
  const runs = Array.from({ length: 40 }, (_, i) => {
    const n = nodes[i % 2]!;
    const p = start(etcdConf(cluster, n, { name: net, ranges }), { command: "ADD", containerId: `k${i}` });
    const at = Math.floor(Math.random() * life * 1.5);
    setTimeout(() => p.kill(), at);
    return { id: `k${i}`, node: n, p };
  });
  const outcomes = await Promise.all(runs.map(async (r) => ({ ...r, out: await r.p.done })));
  const killed = outcomes.filter((o) => o.out.killed);
  assert.ok(killed.length > 5, `only ${killed.length} of 40 were killed before they ended`);
  const have = await held(cluster, net);
  for (const o of outcomes) {
    const mine = have.filter((l) => l.startsWith(`${o.id} `));
    if (o.out.code === 0) {
      assert.equal(
        mine.map((l) => l.split(" ")[1]).sort(),
        stdoutIps(o.out.stdout).sort(),
        `${o.id} answered and is held`,
      );
    } else assert.ok(mine.length === 0 || mine.length === 2, `${o.id}: all or nothing, not ${mine.length}`);
  }
  // The runtime's DEL after a killed ADD frees whatever it left.
  for (const o of killed)
    assert.is(
      (await run(etcdConf(cluster, o.node, { name: net, ranges }), { command: "DEL", containerId: o.id })).code,
      0,
    );
  const left = await held(cluster, net);
  for (const o of killed) assert.not.ok(left.some((l) => l.startsWith(`${o.id} `)));
  await assertSound(cluster, nodes, [net]);
});

test.run();
