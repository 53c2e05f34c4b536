// The CLI while the runtime is busy: list, usage, show, verify, release and gc run against a
// network on which other processes keep ADDing and DELing. Reads see whole states, changes take
// the write transaction like any CNI command, and no address is ever held twice.
import * as assert from "uvu/assert";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { cni, suiteWithDir } from "../helpers/cni.ts";
import type { JsonObject } from "../../shared/json.ts";
import { NET, add, addAll, ok, okJson, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: the CLI during an ADD/DEL storm");

const noDuplicates = (rows: JsonObject[], what: string) => {
  const addrs = rows.map((r) => String(r.address));
  assert.is(new Set(addrs).size, addrs.length, `${what}: no address twice`);
};

test("list, usage, show, verify, release and gc while 12 processes at a time ADD and DEL", async ({ dir }) => {
  const conf = v4conf(dir, { subnet: "10.3.0.0/24" });
  const keep = Array.from({ length: 40 }, (_, i) => `keep${i}`);
  const kept = await addAll(conf, keep);
  await addAll(conf, ["extra0", "extra1", "extra2"]);
  const at = ["--data-dir", dir, "--network", NET];

  let stop = false;
  let waves = 0;
  const stormIds: string[] = [];
  const storm = (async () => {
    for (let w = 0; !stop; w++) {
      const ids = Array.from({ length: 12 }, (_, i) => `storm${w}-${i}`);
      stormIds.push(...ids);
      const adds = await Promise.all(ids.map((id) => cni({ command: "ADD", containerId: id }, conf)));
      for (const r of adds) assert.is(r.code, 0, `storm ADD: ${r.stdout}`);
      const dels = await Promise.all(ids.map((id) => cni({ command: "DEL", containerId: id }, conf)));
      for (const r of dels) assert.is(r.code, 0, `storm DEL: ${r.stdout}`);
      waves++;
    }
  })();

  try {
    const wavesAtStart = waves;
    for (let round = 0; round < 3; round++) {
      const rows = await okJson("list", ...at);
      noDuplicates(rows, "list");
      const ids = new Set(rows.map((r) => r.containerID));
      for (const id of keep.slice(10)) assert.ok(ids.has(id), `${id} listed`);
      const [u] = await okJson("usage", ...at);
      assert.ok(Number(u?.reserved) >= 30 && Number(u?.free) === 254 - Number(u?.reserved), JSON.stringify(u));
      const shown = (await okJson("show", kept[20] ?? "", ...at))[0];
      assert.equal([shown?.state, shown?.containerID], ["reserved", "keep20"]);
      assert.match(await ok("verify", ...at), /^testnet: ok \(\d+ reservations\)\n$/);
    }
    for (const [i, id] of keep.slice(0, 10).entries()) {
      const freed = await okJson("release", "--container-id", id, ...at);
      assert.equal(
        freed.map((r) => [r.address, r.containerID]),
        [[kept[i], id]],
      );
    }
    // gc keeps the kept and every storm attachment (those come and go by themselves): the extras go.
    const keepFile = join(dir, "keep.json");
    const future = Array.from({ length: 400 }, (_, w) => Array.from({ length: 12 }, (_, i) => `storm${w}-${i}`)).flat();
    writeFileSync(
      keepFile,
      JSON.stringify([...keep.slice(10), ...future].map((id) => ({ containerID: id, ifname: "eth0" }))),
    );
    const gone = await okJson("gc", "--keep", keepFile, ...at);
    assert.equal(gone.map((r) => r.containerID).sort(), ["extra0", "extra1", "extra2"]);
    assert.ok(waves > wavesAtStart, `the storm ran during the CLI's work (${waves - wavesAtStart} waves)`);
  } finally {
    stop = true;
    await storm;
  }

  const after = await okJson("list", ...at);
  noDuplicates(after, "after the storm");
  assert.equal(after.map((r) => r.containerID).sort(), keep.slice(10).sort(), "exactly the kept attachments remain");
  assert.match(await ok("verify", ...at), /^testnet: ok \(30 reservations\)\n$/);
  // what release freed is free: each can be had by asking for it
  for (const [i, ip] of kept.slice(0, 10).entries()) assert.equal(await add(conf, `again${i}`, `IP=${ip}`), [ip]);
  assert.ok(stormIds.length > 0);
});

test.run();
