// validate --conf FILE parses the config exactly as ADD does: for every bad config of the
// black-box bad-input suite it gives ADD's message and CNI code (exit 1; with --json, the same
// {code, msg} ADD prints), and for a good one the effective range sets, gateways, holes, routes.
import * as assert from "uvu/assert";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cni, netconf, suiteWithDir } from "../helpers/cni.ts";
import { berthOnlyConfig, configCases, decodeCases, hugeConfig, wholeConfigCases } from "../helpers/bad-configs.ts";
import { berth, NET, ok, okJson } from "./ops.ts";

const test = suiteWithDir("ops: validate");

/** ADD's answer and validate's for the same stdin / file content. */
async function both(dir: string, content: string | Buffer): Promise<void> {
  const file = join(dir, "net.conf");
  writeFileSync(file, content);
  const add = await cni({ command: "ADD", containerId: "c" }, content);
  assert.is(add.code, 1, `ADD refuses it: ${add.stdout}`);
  const want = { code: add.json?.code, msg: add.json?.msg };
  const v = await berth("validate", "--conf", file, "--json");
  assert.is(v.code, 1, v.stderr);
  const got = JSON.parse(v.stdout) as { code: number; msg: string };
  assert.equal({ code: got.code, msg: got.msg }, want, "validate --json answers ADD's code and message");
  const t = await berth("validate", "--conf", file);
  assert.is(t.code, 1);
  assert.is(t.stdout, "");
  assert.is(
    t.stderr,
    `berth-ipam: ${want.msg}${add.json?.details ? ` (${add.json.details})` : ""} (CNI code ${want.code})\n`,
  );
  assert.equal(readdirSync(dir), ["net.conf"], "nothing created");
}

for (const [name, stdin] of decodeCases) test(`${name}: ADD's code 6 and message`, ({ dir }) => both(dir, stdin));
test("a config over the 4 MiB stdin cap: ADD's code 6 and message", ({ dir }) => both(dir, hugeConfig(dir)));
for (const [name, ipam] of [...configCases, ...berthOnlyConfig]) {
  test(`${name}: ADD's code and message`, ({ dir }) => both(dir, JSON.stringify(netconf({ dataDir: dir, ...ipam }))));
}
test("the whole-config cases (args.cni.ips, cniVersion, network name): ADD's code and message", async ({ dir }) => {
  for (const [, conf] of wholeConfigCases(dir)) await both(dir, JSON.stringify(conf));
});

test("a valid config: the range sets with their gateways and holes, routes, the store, the audit log", async ({
  dir,
}) => {
  const file = join(dir, "net.conf");
  writeFileSync(
    file,
    JSON.stringify(
      netconf({
        dataDir: dir,
        ranges: [
          [{ subnet: "10.1.2.0/24", rangeStart: "10.1.2.10", rangeEnd: "10.1.2.50", gateway: "10.1.2.20" }],
          [{ subnet: "fd00::/120" }],
        ],
        exclude: ["10.1.2.30/31", "fd00::5"],
        routes: [{ dst: "0.0.0.0/0" }, { dst: "10.9.0.0/16", gw: "10.1.2.1" }],
        log: { file: "/var/log/berth-ipam.log", level: "debug" },
      }),
    ),
  );
  const v = await okJson<Record<string, unknown>>("validate", "--conf", file);
  assert.equal(v, {
    network: NET,
    cniVersion: "1.0.0",
    rangeSets: [
      {
        rangeSet: "10.1.2.10-10.1.2.50",
        ranges: [{ subnet: "10.1.2.0/24", rangeStart: "10.1.2.10", rangeEnd: "10.1.2.50", gateway: "10.1.2.20" }],
        excluded: ["10.1.2.20", "10.1.2.30-10.1.2.31"],
        size: 38,
      },
      {
        rangeSet: "fd00::1-fd00::ff",
        ranges: [{ subnet: "fd00::/120", rangeStart: "fd00::1", rangeEnd: "fd00::ff", gateway: "fd00::1" }],
        excluded: ["fd00::1", "fd00::5"],
        size: 253,
      },
    ],
    routes: [{ dst: "0.0.0.0/0" }, { dst: "10.9.0.0/16", gw: "10.1.2.1" }],
    dataDir: dir,
    store: join(dir, NET, "berth.db"),
    resolvConf: null,
    log: { file: "/var/log/berth-ipam.log", level: "debug", maxBytes: 10 * 1024 * 1024 },
  });
  const text = await ok("validate", "--conf", file);
  assert.match(text, /: valid\n/);
  assert.match(text, /^range set 0 +10\.1\.2\.10-10\.1\.2\.50 \(38 addresses to hand out\)$/m);
  assert.match(text, /^ {2}range +10\.1\.2\.0\/24 10\.1\.2\.10-10\.1\.2\.50 gateway 10\.1\.2\.20$/m);
  assert.match(text, /^ {2}never handed out +10\.1\.2\.20, 10\.1\.2\.30-10\.1\.2\.31$/m);
  assert.match(text, /^routes +0\.0\.0\.0\/0, 10\.9\.0\.0\/16 via 10\.1\.2\.1$/m);
  assert.match(text, /^audit log +\/var\/log\/berth-ipam\.log \(level debug, rotated above 10485760 bytes\)$/m);
  assert.equal(readdirSync(dir), ["net.conf"], "validate creates no store");
});

test("a usable config with an unusable log section is valid (ADD still answers) and says the log is off", async ({
  dir,
}) => {
  const file = join(dir, "net.conf");
  const conf = netconf({ dataDir: dir, subnet: "10.1.2.0/24", log: { file: "relative.log" } });
  writeFileSync(file, JSON.stringify(conf));
  assert.match(
    await ok("validate", "--conf", file),
    /^audit log +unusable, nothing would be logged: ipam\.log\.file must be an absolute path$/m,
  );
  const r = await cni({ command: "ADD", containerId: "c" }, conf);
  assert.is(r.code, 0, r.stdout);
  assert.is(r.stderr, "berth-ipam: ipam.log.file must be an absolute path; nothing logged\n");
});

test("a .conflist: the config libcni gives the berth-ipam plugin (the list's name and cniVersion)", async ({ dir }) => {
  const file = join(dir, "10.conflist");
  const entry = { type: "bridge", ipam: { type: "berth-ipam", dataDir: dir, subnet: "10.1.2.0/24" } };
  writeFileSync(file, JSON.stringify({ cniVersion: "0.4.0", name: "listnet", plugins: [entry, { type: "portmap" }] }));
  const v = await okJson<Record<string, unknown>>("validate", "--conf", file);
  assert.equal([v.network, v.cniVersion], ["listnet", "0.4.0"]);
  writeFileSync(file, JSON.stringify({ cniVersion: "9.9.9", name: "listnet", plugins: [entry] }));
  const add = await cni({ command: "ADD" }, { ...entry, name: "listnet", cniVersion: "9.9.9" });
  const bad = await berth("validate", "--conf", file, "--json");
  assert.is(bad.code, 1);
  assert.equal(JSON.parse(bad.stdout), { code: add.json?.code, msg: add.json?.msg, details: add.json?.details });
  writeFileSync(
    file,
    JSON.stringify({
      cniVersion: "1.0.0",
      name: "listnet",
      plugins: [{ type: "bridge", ipam: { type: "host-local" } }],
    }),
  );
  assert.match((await berth("validate", "--conf", file)).stderr, /no plugin of the list has ipam\.type berth-ipam/);
});

test.run();
