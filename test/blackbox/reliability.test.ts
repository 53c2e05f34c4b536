// Reliability (issue 9), through the built binary as a runtime runs it: a lost store is refused
// and never made again, a damaged one gets one clear answer, every file-system failure is code 5
// saying what failed and where, impossible config is code 7, and a failed ADD leaves nothing.
// Under the reference stage the berth-only parts are skipped; where host-local's behaviour is
// the point (VERSION, DEL with a broken config, CNI_ARGS), it runs against host-local too.
import * as assert from "uvu/assert";
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { JsonObject } from "../../shared/json.ts";
import { scrambleStorePages } from "../helpers/ipam-store.ts";
import { addresses, cni, execCni, netconf, snapshot, suiteWithDir, type CniCall, type DirCtx } from "../helpers/cni.ts";
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import { underTestIsReference } from "../helpers/peers.ts";

const REF = underTestIsReference();
const s = suiteWithDir("reliability");
const berth = (name: string, fn: (ctx: DirCtx) => Promise<void>) =>
  REF ? s.skip(`${name} (berth only)`, fn) : s(name, fn);
const both = (name: string, fn: (ctx: DirCtx) => Promise<void>) => s(name, fn);

type Outcome = Awaited<ReturnType<typeof cni>>;
const ok = (r: Outcome) => assert.is(r.code, 0, `exit ${r.code}: ${r.stdout}${r.stderr}`);
function refused(r: Outcome, code: number, what = ""): string {
  assert.is(r.code, 1, `${what} exit code: ${r.stdout}`);
  assert.is(r.json?.code, code, `${what}: ${r.stdout}`);
  assert.not.match(r.stdout, /\n\s+at /);
  return String(r.json?.msg);
}

const v110 = (dir: string, ipam: JsonObject = {}, extra: JsonObject = {}) =>
  netconf({ dataDir: dir, subnet: "10.1.2.0/24", ...ipam }, { cniVersion: "1.1.0", ...extra });
const GC_ENV = { CNI_CONTAINERID: "", CNI_IFNAME: "", CNI_NETNS: "" };
const everyCommand = (dir: string): [string, CniCall, JsonObject][] => [
  ["ADD", { command: "ADD", containerId: "new" }, v110(dir)],
  ["DEL", { command: "DEL", containerId: "a" }, v110(dir)],
  ["CHECK", { command: "CHECK", containerId: "a" }, v110(dir)],
  ["GC", { command: "GC", env: GC_ENV }, v110(dir, {}, { "cni.dev/valid-attachments": [] })],
  ["STATUS", { command: "STATUS" }, v110(dir)],
];

/** A network that had a store, with "a" holding 10.1.2.2. */
async function usedNetwork(dir: string): Promise<string> {
  ok(await cni({ command: "ADD", containerId: "a" }, v110(dir)));
  return join(dir, "testnet");
}

const RECOVER = "run `berth-ipam recover --from-cni-cache /var/lib/cni/results";

for (const [name, lose, why] of [
  ["emptied (`> berth.db`)", (net: string) => truncateSync(join(net, "berth.db"), 0), "is empty (zero length)"],
  ["deleted", (net: string) => rmSync(join(net, "berth.db")), "is missing, but the identity file"],
  [
    "replaced by another network's berth.db",
    (net: string) => copyFileSync(join(net, "..", "othernet", "berth.db"), join(net, "berth.db")),
    "is another store",
  ],
] as const) {
  berth(
    `a store whose berth.db was ${name}: ADD is 5 naming the file and \`berth-ipam recover\`, nothing made again; DEL changes nothing; STATUS 50; CHECK 5`,
    async ({ dir }) => {
      const net = await usedNetwork(dir);
      ok(await cni({ command: "ADD", containerId: "x" }, v110(dir, {}, { name: "othernet" })));
      lose(net);
      const before = snapshot(dir);
      const msg = refused(await cni({ command: "ADD", containerId: "new" }, v110(dir)), 5, "ADD");
      assert.match(msg, `store lost: ${join(net, "berth.db")} ${why}`);
      assert.match(msg, `${RECOVER} --data-dir ${dir} --network testnet\``);
      assert.is(snapshot(dir), before, "nothing re-created, nothing written");
      ok(await cni({ command: "DEL", containerId: "a" }, v110(dir)));
      assert.is(snapshot(dir), before, "DEL of a lost store changes nothing");
      assert.match(refused(await cni({ command: "STATUS" }, v110(dir)), 50, "STATUS"), "store lost:");
      refused(await cni({ command: "CHECK", containerId: "a" }, v110(dir)), 5, "CHECK");
      assert.is(snapshot(dir), before);
    },
  );
}

/** A store of 2,000 reservations whose pages after the first (the schema) are overwritten with garbage. */
async function malformedStore(dir: string): Promise<string> {
  const net = await usedNetwork(dir);
  const db = new DatabaseSync(join(net, "berth.db"));
  const insert = db.prepare("INSERT INTO reservation (ip, container_id, ifname, range_set) VALUES (?, ?, 'eth0', 'x')");
  db.exec("BEGIN");
  for (let i = 0; i < 2000; i++) {
    const key = Buffer.alloc(16);
    key.writeUInt32BE(0xffff, 8);
    key.writeUInt32BE(0x0b000000 + i, 12);
    insert.run(key, `filler${i}`);
  }
  db.exec("COMMIT");
  db.close();
  return scrambleStorePages(net);
}

for (const [name, damage] of [
  ["whose pages are malformed (`database disk image is malformed`)", malformedStore],
  [
    "that is not a database at all",
    async (dir: string) => {
      const net = await usedNetwork(dir);
      writeFileSync(join(net, "berth.db"), "not a database ".repeat(500));
      return join(net, "berth.db");
    },
  ],
] as const) {
  berth(
    `a store ${name}: every command answers 5 "store corrupt: <path>; run \`berth-ipam verify\`"`,
    async ({ dir }) => {
      const path = await damage(dir);
      const before = snapshot(dir);
      for (const [command, call, conf] of everyCommand(dir)) {
        const msg = refused(await cni(call, conf), 5, command);
        assert.is(msg, `store corrupt: ${path}; run \`berth-ipam verify\``, command);
      }
      assert.is(snapshot(dir), before, "nothing written");
    },
  );
}

const LONG = "x".repeat(300);
for (const [name, dataDir, reason] of [
  ["a data dir path component too long", (d: string) => join(d, LONG), "name too long (ENAMETOOLONG)"],
  ["a data dir that is a file", (d: string) => join(d, "file"), "not a directory (ENOTDIR)"],
  ["a data dir below a file", (d: string) => join(d, "file", "sub"), "not a directory (ENOTDIR)"],
] as const) {
  berth(`${name}: ADD and DEL are 5 naming what failed and where`, async ({ dir }) => {
    writeFileSync(join(dir, "file"), "");
    const dd = dataDir(dir);
    for (const command of ["ADD", "DEL"]) {
      const msg = refused(await cni({ command }, v110(dd)), 5, command);
      assert.is(msg, `store: cannot open the store directory ${join(dd, "testnet")}: ${reason}`, command);
    }
  });
}

/** Runs the plugin in a private mount namespace where dir is mounted read-only (gone when it exits). */
const readOnly = (dir: string) => (call: CniCall, stdin: JsonObject) =>
  execCni("/usr/bin/unshare", {
    args: [
      "-m",
      "sh",
      "-c",
      `mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$1"`,
      dir,
      IPAM_PLUGIN,
    ],
    env: {
      CNI_COMMAND: call.command,
      CNI_CONTAINERID: call.containerId ?? "ctr1",
      CNI_NETNS: "/x",
      CNI_IFNAME: "eth0",
    },
    stdin: JSON.stringify(stdin),
  });

berth(
  "a brand-new network on a read-only data dir: 5 naming the directory and EROFS; an existing store's ADD too",
  async ({ dir }) => {
    const r = await readOnly(dir)({ command: "ADD" }, v110(join(dir, "data")));
    assert.is(
      refused(r, 5),
      `store: cannot create the store directory ${join(dir, "data")}: read-only file system (EROFS)`,
    );
    await usedNetwork(dir);
    const again = await readOnly(dir)({ command: "ADD", containerId: "b" }, v110(dir));
    assert.is(
      refused(again, 5),
      `store in ${join(dir, "testnet")}: unable to open database file (the directory is not writable: read-only file system (EROFS))`,
    );
    assert.equal(readdirSync(dir), ["testnet"]);
  },
);

berth("a data dir the plugin may not enter (EACCES): 5 naming it", async ({ dir }) => {
  const data = join(dir, "private");
  mkdirSync(data, { mode: 0o700 });
  chmodSync(dir, 0o755);
  const conf = JSON.stringify(v110(join(data, "sub")));
  const r = await execCni("/usr/bin/setpriv", {
    args: ["--reuid=65534", "--regid=65534", "--clear-groups", IPAM_PLUGIN],
    env: { CNI_COMMAND: "ADD", CNI_CONTAINERID: "a", CNI_NETNS: "/x", CNI_IFNAME: "eth0" },
    stdin: conf,
  });
  assert.is(
    refused(r, 5),
    `store: cannot open the store directory ${join(data, "sub", "testnet")}: permission denied (EACCES)`,
  );
});

berth("a NUL byte in dataDir or resolvConf is 7; in dataDir DEL is 7 too", async ({ dir }) => {
  for (const key of ["dataDir", "resolvConf"]) {
    const msg = refused(await cni({ command: "ADD" }, v110(dir, { [key]: `${dir}/a\u0000b` })), 7, key);
    assert.match(msg, `ipam.${key}`);
    assert.match(msg, "contains a NUL byte");
  }
  refused(await cni({ command: "DEL" }, v110(`${dir}/a\u0000b`)), 7, "DEL");
  assert.equal(readdirSync(dir), []);
});

berth(
  "resolvConf that is /dev/zero, a FIFO, a directory or a huge file: 7 at once; a missing one 5",
  async ({ dir }) => {
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    mkdirSync(join(dir, "adir"));
    writeFileSync(join(dir, "huge"), `# ${"x".repeat(100 * 1024)}\n`);
    for (const [path, code, text] of [
      ["/dev/zero", 7, "ipam.resolvConf /dev/zero is not a regular file"],
      [fifo, 7, `ipam.resolvConf ${fifo} is not a regular file`],
      [join(dir, "adir"), 7, `ipam.resolvConf ${join(dir, "adir")} is not a regular file`],
      [join(dir, "huge"), 7, `ipam.resolvConf ${join(dir, "huge")} is larger than 64 KiB`],
      [join(dir, "missing"), 5, `open ${join(dir, "missing")}: no such file or directory`],
    ] as const) {
      const t0 = performance.now();
      const r = await cni({ command: "ADD" }, v110(join(dir, "data"), { resolvConf: path }));
      const ms = performance.now() - t0;
      assert.is(refused(r, code, path), text);
      // A read of /dev/zero grows by a GB a second and a FIFO without a writer never answers.
      assert.ok(ms < 10_000, `${path}: answered in ${ms.toFixed(0)} ms`);
    }
    assert.not.ok(existsSync(join(dir, "data")), "nothing written");
  },
);

for (const [name, ipam, args] of [
  ["a requested address that is the gateway", { subnet: "10.1.2.0/24" }, "IP=10.1.2.1"],
  ["a requested address outside every range", { subnet: "10.1.2.0/24" }, "IP=192.168.0.5"],
  ["a range set with no address left (all gateway and exclude)", { subnet: "10.0.0.0/30", exclude: ["10.0.0.2"] }, ""],
] as const) {
  berth(`a failed ADD on a network never used (${name}) leaves no file or directory behind`, async ({ dir }) => {
    const dataDir = join(dir, "a", "b");
    const r = await cni({ command: "ADD", args: args || undefined }, v110(dataDir, ipam));
    assert.is(r.code, 1, r.stdout);
    assert.equal(readdirSync(dir), [], "not the network's directory, not the data dir it would have made");
  });
}

for (const subnet of ["0.0.0.0/0", "::/0", "127.0.0.0/8", "224.0.0.0/24", "ff02::/64", "::/120"]) {
  berth(`subnet ${subnet} cannot be a pod network: 7 with a clear message`, async ({ dir }) => {
    const msg = refused(await cni({ command: "ADD" }, v110(dir, { subnet })), 7);
    assert.match(msg, `invalid range set 0: Network ${subnet} cannot be a pod network: it contains`);
    assert.equal(readdirSync(dir), []);
  });
}

for (const file of ["berth.db", "berth.db-wal", "berth.db-shm", "berth.id"]) {
  berth(
    `a symlinked ${file} is never opened or written through, not even to another network's store`,
    async ({ dir }) => {
      const net = await usedNetwork(dir);
      ok(await cni({ command: "ADD", containerId: "x" }, v110(dir, {}, { name: "othernet" })));
      const other = join(dir, "othernet", file === "berth.id" ? "berth.id" : "berth.db");
      const outside = join(dir, "outside");
      writeFileSync(outside, "");
      for (const target of [outside, other]) {
        rmSync(join(net, file), { force: true });
        symlinkSync(target, join(net, file));
        const before = snapshot(join(dir, "othernet"));
        const msg = refused(await cni({ command: "ADD", containerId: "new" }, v110(dir)), 5, target);
        assert.match(msg, `${join(net, file)} is a symbolic link`);
        assert.is(statSync(outside).size, 0, "nothing written outside the network's directory");
        assert.is(snapshot(join(dir, "othernet")), before, "the other network's store is untouched");
      }
    },
  );
}

berth("a symlinked data dir is fine", async ({ dir }) => {
  mkdirSync(join(dir, "real"));
  symlinkSync(join(dir, "real"), join(dir, "link"));
  ok(await cni({ command: "ADD" }, v110(join(dir, "link"))));
  assert.ok(existsSync(join(dir, "real", "testnet", "berth.db")));
});

both("VERSION needs only CNI_COMMAND: a bad container ID or interface name is not its business", async () => {
  const envs: Record<string, string>[] = [
    { CNI_CONTAINERID: "bad id!" },
    { CNI_IFNAME: "a/b:c" },
    { CNI_CONTAINERID: "", CNI_IFNAME: "" },
  ];
  for (const env of envs) {
    const r = await cni({ command: "VERSION", env }, "");
    ok(r);
    assert.ok(Array.isArray(r.json?.supportedVersions), r.stdout);
  }
});

// Each broken field DEL does not need; host-local 1.1.1 releases only where it ignores the field.
const BROKEN: [string, (c: JsonObject) => void, boolean][] = [
  ["cniVersion null", (c) => (c.cniVersion = null), true],
  ["cniVersion a number", (c) => (c.cniVersion = 1), false],
  ["cniVersion an object", (c) => (c.cniVersion = {}), false],
  ["ranges garbage", (c) => ((c.ipam as JsonObject).ranges = "garbage"), false],
  ["subnet not a CIDR", (c) => ((c.ipam as JsonObject).subnet = "nope"), false],
  ["rangeStart not an IP", (c) => ((c.ipam as JsonObject).rangeStart = "x"), false],
  ["routes a number", (c) => ((c.ipam as JsonObject).routes = 5), false],
  ["resolvConf a number", (c) => ((c.ipam as JsonObject).resolvConf = 5), false],
  ["exclude a number", (c) => ((c.ipam as JsonObject).exclude = 5), true],
  ["ipam.type a number", (c) => ((c.ipam as JsonObject).type = 5), false],
  ["runtimeConfig a number", (c) => (c.runtimeConfig = 5), false],
  ["args a number", (c) => (c.args = 5), false],
  ["prevResult a number", (c) => (c.prevResult = 5), true],
  ["dns a number", (c) => (c.dns = 5), true],
  ["type missing", (c) => delete c.type, true],
];
for (const [name, breakIt, refReleases] of BROKEN) {
  both(
    `DEL with ${name} releases by attachment (host-local 1.1.1: ${refReleases ? "releases too" : "fails, the address leaks"})`,
    async ({ dir }) => {
      const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
      ok(await cni({ command: "ADD", containerId: "a" }, conf));
      const broken = structuredClone(conf);
      breakIt(broken);
      const del = await cni({ command: "DEL", containerId: "a" }, broken);
      const again = await cni({ command: "ADD", containerId: "b" }, { ...conf, args: { cni: { ips: ["10.1.2.2"] } } });
      if (REF && !refReleases) {
        assert.is(del.code, 1, `host-local's DEL fails: ${del.stdout}`);
        assert.is(again.code, 1, "and 10.1.2.2 stays taken");
        return;
      }
      ok(del);
      ok(again);
      assert.equal(addresses(again.json), ["10.1.2.2/24"], "10.1.2.2 was freed");
    },
  );
}

berth(
  "DEL needs dataDir: one it cannot use (a number) is 7, not a release in the default data dir",
  async ({ dir }) => {
    const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
    ok(await cni({ command: "ADD", containerId: "a" }, conf));
    const before = snapshot(dir);
    const msg = refused(
      await cni({ command: "DEL", containerId: "a" }, netconf({ dataDir: 5, subnet: "10.1.2.0/24" })),
      7,
    );
    assert.is(msg, "ipam.dataDir must be a string");
    assert.is(snapshot(dir), before);
  },
);

both("CNI_ARGS IP= with an empty value is no request, as in host-local; the last IP= wins", async ({ dir }) => {
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
  const empty = await cni({ command: "ADD", containerId: "a", args: "IP=" }, conf);
  ok(empty);
  assert.equal(addresses(empty.json), ["10.1.2.2/24"]);
  const reset = await cni({ command: "ADD", containerId: "b", args: "IgnoreUnknown=1;IP=10.1.2.50;IP=" }, conf);
  ok(reset);
  assert.equal(addresses(reset.json), ["10.1.2.3/24"]);
});

both("CNI_ARGS IgnoreUnknown: exactly 1/true/0/false in any case, as host-local 1.1.1 accepts", async ({ dir }) => {
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24" });
  const argsCode = REF ? 999 : 4;
  for (const v of ["1", "true", "TRUE", "True", "tRuE"])
    ok(await cni({ command: "ADD", containerId: `c${v}`, args: `IgnoreUnknown=${v};K8S_POD_NAME=p` }, conf));
  for (const [v, lower] of [
    ["t", "t"],
    ["T", "t"],
    ["", ""],
    ["yes", "yes"],
  ])
    assert.is(
      refused(
        await cni({ command: "ADD", containerId: "x", args: `IgnoreUnknown=${v};K8S_POD_NAME=p` }, conf),
        argsCode,
        v,
      ),
      `ARGS: error parsing value of pair "IgnoreUnknown=${v}": boolean unmarshal error: invalid input ${lower}`,
    );
  assert.is(
    refused(
      await cni({ command: "ADD", containerId: "x", args: "IgnoreUnknown=false;K8S_POD_NAME=p" }, conf),
      argsCode,
    ),
    'ARGS: unknown args ["K8S_POD_NAME=p"]',
  );
});

s.run();
