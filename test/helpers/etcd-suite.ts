// A uvu suite on one 3-member etcd cluster: started before the suite's first test, stopped (its
// data and the suite's scratch root removed) after its last. Every test is skipped, or failed
// under CI, when a requirement is missing.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, type Test } from "uvu";
import { startCluster, type Cluster } from "./etcd-cluster.ts";
import { gated, type Define, type Requirement } from "./peers.ts";

export type ClusterCtx = { cluster: Cluster; root: string };

export function clusterSuite(
  name: string,
  tag: string,
  reqs: Requirement[],
): { test: Test<ClusterCtx>; define: Define<ClusterCtx> } {
  const test = suite<ClusterCtx>(name);
  const { define, ready } = gated(test, "etcd", reqs);
  if (ready) {
    test.before(async (ctx) => {
      ctx.cluster = await startCluster();
      ctx.root = mkdtempSync(join(tmpdir(), `berth-etcd-${tag}-`));
    });
    test.after(async (ctx) => {
      await ctx.cluster?.stop();
      if (ctx.root) rmSync(ctx.root, { recursive: true, force: true });
    });
  }
  return { test, define };
}
