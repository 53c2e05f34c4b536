// The README's "Cluster-wide pools" example config, run: against a TLS etcd with client
// certificates and auth set up as the README's etcdctl commands do (a user per node whose role is
// limited to the prefix). Only what names this machine is replaced: the endpoints, the three TLS
// files, the password file, and a dataDir of the test's own. Every other key stays as written.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, rmSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { ROOT } from "../helpers/exec.ts";
import { gated, needPluginUnderTest } from "../helpers/peers.ts";
import { enableAuth, needEtcd, startCluster } from "../helpers/etcd-cluster.ts";
import { checkPool, storeConfig } from "../helpers/etcd-pool.ts";
import { ips, run } from "../helpers/etcd-nodes.ts";
import { isJsonObject, type JsonObject } from "../../shared/json.ts";

const test = suite("README cluster-wide pools");
const { define } = gated(test, "etcd", [...needEtcd(), needPluginUnderTest()]);

function readmeExample(): JsonObject {
  const text = readFileSync(join(ROOT, "README.md"), "utf8");
  const at = text.indexOf("### Cluster-wide pools");
  assert.ok(at >= 0, "the README has the section");
  const block = /```json\n([\s\S]*?)\n```/.exec(text.slice(at));
  assert.ok(block?.[1], "the section has a JSON example");
  const parsed: unknown = JSON.parse(block[1]);
  assert.ok(isJsonObject(parsed));
  return parsed;
}

define("the README's example config adds, checks, reports and deletes as written", async () => {
  const example = readmeExample();
  const ipam = example.ipam as JsonObject;
  const store = ipam.store as JsonObject;
  assert.equal(Object.keys(store).sort(), ["auth", "blockSize", "endpoints", "node", "prefix", "tls", "type"]);
  const c = await startCluster({ tls: true, clientCertAuth: true });
  const dataDir = mkdtempSync(join(tmpdir(), "berth-readme-"));
  try {
    const auth = store.auth as JsonObject;
    const a = await enableAuth(c, String(auth.username), String(store.prefix));
    const tls = c.tls!;
    const conf = {
      ...example,
      ipam: {
        ...ipam,
        dataDir,
        store: {
          ...store,
          endpoints: c.endpoints,
          tls: { ca: tls.ca, cert: tls.clientCert, key: tls.clientKey },
          auth: { username: auth.username, passwordFile: a.passwordFile },
        },
      },
    };
    const add = await run(conf, { command: "ADD", containerId: "readme1" });
    assert.is(add.code, 0, add.stdout);
    const got = ips(add);
    assert.is(got.length, 2, "an IPv4 and an IPv6 address");
    assert.match(got[0]!, /^10\.210\./);
    assert.match(got[1]!, /^fd10:210:/);
    assert.is((await run({ ...conf, prevResult: add.json }, { command: "CHECK", containerId: "readme1" })).code, 0);
    assert.is((await run(conf, { command: "STATUS" })).code, 0);
    const pool = await checkPool(c, storeConfig(c, { prefix: store.prefix }));
    assert.equal(
      pool.reservations.map((r) => `${r.network} ${r.node} ${r.containerID}`),
      ["macvlan-storage worker-3 readme1", "macvlan-storage worker-3 readme1"],
    );
    assert.is((await run(conf, { command: "DEL", containerId: "readme1" })).code, 0);
    assert.equal((await checkPool(c, storeConfig(c, { prefix: store.prefix }))).reservations, []);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
