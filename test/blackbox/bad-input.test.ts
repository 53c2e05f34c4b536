// Bad input (DEVELOPERS.md "Standards"): each gets the right CNI error code, exit 1, nothing on
// stdout but the error JSON, and the store is left exactly as it was.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { cni, netconf, snapshot } from "../helpers/cni.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";
import { underTestIsReference } from "../helpers/peers.ts";
import { berthOnlyConfig, configCases, decodeCases, hugeConfig } from "../helpers/bad-configs.ts";

const REF = underTestIsReference();
const CONFIG_ERROR = REF ? 999 : 7;
type Ctx = { dir: string; before: string };
const test = suite<Ctx>("bad input");
test.before.each(async (ctx) => {
  ctx.dir = tempDir();
  // A store with one reservation in it, so "unchanged" means something.
  const r = await cni(
    { command: "ADD", containerId: "existing" },
    netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }),
  );
  assert.is(r.code, 0, r.stdout);
  ctx.before = snapshot(ctx.dir);
});
test.after.each((ctx) => removeDir(ctx.dir));

function assertRefused(r: Awaited<ReturnType<typeof cni>>, code: number, ctx: Ctx): void {
  assert.is(r.code, 1, `exit code (stdout ${r.stdout})`);
  assert.ok(r.json, `stdout holds only the error JSON: ${JSON.stringify(r.stdout)}`);
  assert.is(r.json.code, code, JSON.stringify(r.json));
  assert.type(r.json.msg, "string");
  assert.not.match(r.stdout, /\n\s+at /);
  assert.not.match(r.stderr, /\n\s+at .*:\d+:\d+/);
  assert.is(snapshot(ctx.dir), ctx.before, "the store is unchanged");
}

for (const [name, stdin] of decodeCases) {
  test(`${name} is error 6 (decoding failure)`, async (ctx) => {
    assertRefused(await cni({ command: "ADD", containerId: "new" }, stdin), 6, ctx);
  });
}

test("a huge input (8 MiB) is refused without reading it all (berth: error 6)", async (ctx) => {
  const r = await cni({ command: "ADD", containerId: "new" }, hugeConfig(ctx.dir));
  if (REF) {
    assert.is(r.code, 0, "host-local reads any size");
    return;
  }
  assertRefused(r, 6, ctx);
});

for (const [name, ipam] of configCases) {
  test(`${name} is an invalid network config (berth 7, host-local 999)`, async (ctx) => {
    const r = await cni({ command: "ADD", containerId: "new" }, netconf({ dataDir: ctx.dir, ...ipam }));
    // Go's JSON decoder reports type mismatches itself (code 999 as a plain error, or 6);
    // host-local passes a route without dst through unchecked (intended difference).
    if (!REF) assertRefused(r, CONFIG_ERROR, ctx);
    else if (name !== "a route without dst") {
      assert.is(r.code, 1, r.stdout);
      assert.ok([6, 999].includes(Number(r.json?.code)), r.stdout);
    }
  });
}

for (const [name, ipam] of berthOnlyConfig) {
  (REF ? test.skip : test)(`${name} is error 7 (berth only)`, async (ctx) => {
    assertRefused(await cni({ command: "ADD", containerId: "new" }, netconf({ dataDir: ctx.dir, ...ipam })), 7, ctx);
  });
}

test("args.cni.ips with a non-address is refused", async (ctx) => {
  const r = await cni(
    { command: "ADD", containerId: "new" },
    netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }, { args: { cni: { ips: ["not-an-ip"] } } }),
  );
  assert.is(r.code, 1);
  if (!REF) assertRefused(r, 7, ctx);
  assert.is(snapshot(ctx.dir), ctx.before);
});

test("CNI_ARGS IP= with a non-address is refused (berth: 4, the env is invalid)", async (ctx) => {
  const r = await cni(
    { command: "ADD", containerId: "new", args: "IP=999.1.1.1" },
    netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }),
  );
  assert.is(r.code, 1);
  if (!REF) assertRefused(r, 4, ctx);
  assert.is(snapshot(ctx.dir), ctx.before);
});

test("cniVersion that is a number is refused", async (ctx) => {
  const r = await cni(
    { command: "ADD", containerId: "new" },
    netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }, { cniVersion: 1 }),
  );
  assert.is(r.code, 1);
  assert.ok([1, 6].includes(Number(r.json?.code)), r.stdout);
  assert.is(snapshot(ctx.dir), ctx.before);
});

test("a path-like network name is refused before anything touches the disk", async (ctx) => {
  assertRefused(
    await cni(
      { command: "ADD", containerId: "new" },
      netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }, { name: "../../etc" }),
    ),
    7,
    ctx,
  );
  assertRefused(
    await cni(
      { command: "DEL", containerId: "existing" },
      netconf({ dataDir: ctx.dir, subnet: "10.1.2.0/24" }, { name: "../testnet" }),
    ),
    7,
    ctx,
  );
});

test.run();
