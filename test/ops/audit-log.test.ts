// The audit log (ipam.log): one JSON line per CNI command with what it reserved or released, its
// outcome, code and duration; whole lines under 100 concurrent commands; rotation to .1 above the
// cap; a log that cannot be written never changes the CNI answer.
import * as assert from "uvu/assert";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addresses, cni, suiteWithDir } from "../helpers/cni.ts";
import type { JsonObject } from "../../shared/json.ts";
import { NET, RFC3339, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: audit log");

const logged = (dir: string, log: JsonObject) => v4conf(dir, { subnet: "10.2.0.0/16", log });

/** Every line of the file, each parsed (a torn or interleaved line fails here). */
function lines(file: string): JsonObject[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, "utf8");
  assert.ok(text === "" || text.endsWith("\n"), "the file ends with a whole line");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as JsonObject;
      } catch {
        throw new Error(`not one JSON object: ${JSON.stringify(l.slice(0, 200))}`);
      }
    });
}

test("one line per command: time, command, network, container ID, ifname, reserved/released, outcome, code, duration", async ({
  dir,
}) => {
  const file = join(dir, "audit.log");
  const conf = logged(dir, { file, level: "info" });
  const add = await cni({ command: "ADD", containerId: "a" }, conf);
  assert.is(add.code, 0);
  assert.is(add.stderr, "");
  assert.is((await cni({ command: "CHECK", containerId: "a" }, { ...conf, prevResult: add.json })).code, 0);
  assert.is((await cni({ command: "DEL", containerId: "a" }, conf)).code, 0);
  const refused = await cni({ command: "ADD", containerId: "b", args: "IP=10.9.9.9" }, conf);
  assert.is(refused.code, 1);
  const [l1, l2, l3, l4, ...rest] = lines(file);
  assert.equal(rest, []);
  for (const l of [l1, l2, l3, l4]) {
    assert.match(String(l?.time), RFC3339);
    assert.type(l?.durationMs, "number");
    assert.ok(Number(l?.durationMs) > 0 && Number(l?.durationMs) < 60_000, `durationMs ${l?.durationMs}`);
  }
  const strip = (l: JsonObject | undefined) => ({ ...l, time: undefined, durationMs: undefined });
  const base = { time: undefined, durationMs: undefined, network: NET, ifname: "eth0" };
  assert.equal(strip(l1), {
    ...base,
    level: "info",
    command: "ADD",
    containerID: "a",
    reserved: [addresses(add.json)[0]?.split("/")[0]],
    released: [],
    outcome: "ok",
    code: 0,
  });
  assert.equal(strip(l2), {
    ...base,
    level: "info",
    command: "CHECK",
    containerID: "a",
    reserved: [],
    released: [],
    outcome: "ok",
    code: 0,
  });
  assert.equal(strip(l3), {
    ...base,
    level: "info",
    command: "DEL",
    containerID: "a",
    reserved: [],
    released: ["10.2.0.2"],
    outcome: "ok",
    code: 0,
  });
  assert.equal(strip(l4), {
    ...base,
    level: "error",
    command: "ADD",
    containerID: "b",
    reserved: [],
    released: [],
    outcome: "error",
    code: refused.json?.code,
    msg: refused.json?.msg,
  });
});

test("GC logs what it released; a repeated ADD logs the address it keeps as reserved, not as released", async ({
  dir,
}) => {
  const file = join(dir, "audit.log");
  const conf = logged(dir, { file });
  for (const id of ["a", "b", "c"]) assert.is((await cni({ command: "ADD", containerId: id }, conf)).code, 0);
  assert.is((await cni({ command: "ADD", containerId: "a" }, conf)).code, 0);
  const gc = { ...conf, cniVersion: "1.1.0", "cni.dev/valid-attachments": [{ containerID: "b", ifname: "eth0" }] };
  assert.is((await cni({ command: "GC" }, gc)).code, 0);
  const all = lines(file);
  assert.equal(
    all.map((l) => [l.command, l.containerID, l.reserved, l.released]),
    [
      ["ADD", "a", ["10.2.0.2"], []],
      ["ADD", "b", ["10.2.0.3"], []],
      ["ADD", "c", ["10.2.0.4"], []],
      ["ADD", "a", ["10.2.0.2"], []],
      ["GC", "ctr1", [], ["10.2.0.2", "10.2.0.4"]],
    ],
  );
});

test("100 concurrent commands: 100 lines, every one whole JSON, one per command", async ({ dir }) => {
  const file = join(dir, "audit.log");
  const conf = logged(dir, { file, level: "debug" });
  const ids = Array.from({ length: 50 }, (_, i) => `c${i}`);
  const results = await Promise.all([
    ...ids.map((id) => cni({ command: "ADD", containerId: id, args: "IgnoreUnknown=1;K8S_POD_NAME=p" }, conf)),
    ...ids.map((id) => cni({ command: "DEL", containerId: `gone${id}` }, conf)),
  ]);
  for (const r of results) assert.is(r.code, 0, r.stdout);
  const all = lines(file);
  assert.is(all.length, 100);
  const seen = new Set(all.map((l) => `${l.command} ${l.containerID}`));
  assert.is(seen.size, 100, "one line per command");
  for (const id of ids) assert.ok(seen.has(`ADD ${id}`) && seen.has(`DEL gone${id}`), id);
  const reserved = all.filter((l) => l.command === "ADD").flatMap((l) => l.reserved as string[]);
  assert.is(new Set(reserved).size, 50, "each ADD's line names its own address");
  for (const l of all) {
    assert.is(l.cniVersion, "1.0.0", "debug adds the version");
    assert.is(l.netns, "/var/run/netns/berth-test");
  }
  assert.is(all.find((l) => l.command === "ADD")?.args, "IgnoreUnknown=1;K8S_POD_NAME=p");
  assert.is(statSync(file).mode & 0o777, 0o600, "the log is private like the store");
});

test("level error logs only failed commands", async ({ dir }) => {
  const file = join(dir, "audit.log");
  const conf = logged(dir, { file, level: "error" });
  assert.is((await cni({ command: "ADD", containerId: "a" }, conf)).code, 0);
  assert.is((await cni({ command: "ADD", containerId: "b", args: "IP=10.9.9.9" }, conf)).code, 1);
  assert.equal(
    lines(file).map((l) => [l.containerID, l.outcome]),
    [["b", "error"]],
  );
});

test("rotation: above maxBytes the file becomes .1; nothing is lost but older generations, every line whole", async ({
  dir,
}) => {
  const file = join(dir, "audit.log");
  const maxBytes = 4096;
  const conf = logged(dir, { file, maxBytes });
  // One at a time: each line is about 250 bytes, so the file rotates every ~17 commands.
  for (let i = 0; i < 40; i++) assert.is((await cni({ command: "DEL", containerId: `s${i}` }, conf)).code, 0);
  const cur = lines(file);
  const old = lines(`${file}.1`);
  assert.ok(old.length > 0, "rotated once at least");
  assert.ok(statSync(`${file}.1`).size > maxBytes, ".1 is the file that crossed the cap");
  assert.ok(statSync(file).size <= maxBytes, "the current file is under the cap");
  // The two files hold the latest commands in order, without a gap.
  const ids = [...old, ...cur].map((l) => Number(String(l.containerID).slice(1)));
  assert.equal(
    ids,
    Array.from({ length: ids.length }, (_, k) => 40 - ids.length + k),
  );
  assert.equal(
    readdirSync(dir)
      .filter((n) => n.startsWith("audit.log"))
      .sort(),
    ["audit.log", "audit.log.1"],
  );

  // Concurrent writers at the cap: still whole lines, and both files stay bounded.
  await Promise.all(Array.from({ length: 60 }, (_, i) => cni({ command: "DEL", containerId: `p${i}` }, conf)));
  for (const f of [file, `${file}.1`]) {
    lines(f);
    assert.ok(statSync(f).size <= maxBytes + 60 * 400, `${f} is bounded: ${statSync(f).size}`);
  }
});

test("an unwritable log never fails the command: the same answer, one line on stderr", async ({ dir }) => {
  const plain = v4conf(dir, { subnet: "10.2.0.0/16" });
  const blocker = join(dir, "not-a-dir");
  writeFileSync(blocker, "");
  mkdirSync(join(dir, "a-dir"));
  for (const file of [join(blocker, "audit.log"), join(dir, "a-dir"), join(dir, "missing", "audit.log")]) {
    const conf = logged(dir, { file });
    const add = await cni({ command: "ADD", containerId: "a" }, conf);
    assert.is(add.code, 0, add.stdout);
    assert.equal(add.json, (await cni({ command: "ADD", containerId: "a" }, plain)).json, "the answer is unchanged");
    assert.match(add.stderr, new RegExp(`^berth-ipam: audit log ${file.replaceAll("/", "\\/")}: [^\\n]+\\n$`));
    const del = await cni({ command: "DEL", containerId: "a" }, conf);
    assert.is(del.code, 0);
    assert.is(del.stdout, "");
  }
});

test("without log nothing is written; a bad log section is one line on stderr and the answer is unchanged", async ({
  dir,
}) => {
  const before = readdirSync(dir);
  const r = await cni({ command: "ADD", containerId: "a" }, v4conf(dir));
  assert.is(r.code, 0);
  assert.is(r.stderr, "");
  assert.equal(readdirSync(dir), [...before, NET].sort(), "only the store");
  for (const [log, msg] of [
    ["x", "ipam.log must be an object {file, level}"],
    [{ file: join(dir, "l"), level: "loud" }, "ipam.log.level must be one of error, info, debug"],
    [{ file: join(dir, "l"), maxBytes: -1 }, "ipam.log.maxBytes must be a positive integer"],
  ] as const) {
    const bad = await cni({ command: "ADD", containerId: "a" }, v4conf(dir, { log }));
    assert.is(bad.code, 0, bad.stdout);
    assert.is(bad.stderr, `berth-ipam: ${msg}; nothing logged\n`);
  }
  assert.not.ok(existsSync(join(dir, "l")));
});

test.run();
