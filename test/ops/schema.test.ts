// A node upgraded from a berth whose store is schema 1: the first commands migrate it once, also
// when many start at the same instant, and the CLI reads the old reservations (with no time).
import * as assert from "uvu/assert";
import { join } from "node:path";
import { cni, suiteWithDir } from "../helpers/cni.ts";
import { schema1Store, schemaVersion } from "../helpers/schema1-store.ts";
import { NET, RFC3339, okJson, v4conf } from "./ops.ts";

const test = suiteWithDir("ops: schema 1 stores");

test("30 concurrent ADDs on a schema-1 store: one migration, every ADD served, old reservations kept", async ({
  dir,
}) => {
  const net = join(dir, NET);
  const old = ["10.1.2.2", "10.1.2.3"].map((ip, i) => ({
    ip,
    containerId: `old${i}`,
    ifname: "eth0",
    rangeSet: "10.1.2.1-10.1.2.254",
  }));
  schema1Store(net, old);
  const conf = v4conf(dir);
  const adds = await Promise.all(
    Array.from({ length: 30 }, (_, i) => cni({ command: "ADD", containerId: `n${i}` }, conf)),
  );
  for (const r of adds) assert.is(r.code, 0, r.stdout);
  assert.is(schemaVersion(net), 2);
  const rows = await okJson("list", "--data-dir", dir);
  assert.is(rows.length, 32);
  assert.is(new Set(rows.map((r) => r.address)).size, 32, "no address twice");
  assert.equal(
    rows.filter((r) => String(r.containerID).startsWith("old")).map((r) => [r.address, r.reservedAt]),
    [
      ["10.1.2.2", null],
      ["10.1.2.3", null],
    ],
    "a reservation from schema 1 has no time",
  );
  for (const r of rows.filter((r) => String(r.containerID).startsWith("n")))
    assert.match(String(r.reservedAt), RFC3339);
});

test.run();
