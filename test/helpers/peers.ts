// Real-peer gating for the conformance stages (netns, libcni, podman): a stage whose peer is
// missing fails under CI=true (CI installs every peer from .ci/apt-packages, so a missing one is
// a CI defect) and is skipped locally with a message saying exactly what is missing.
import { accessSync, constants, existsSync, realpathSync } from "node:fs";
import { basename } from "node:path";
import type { Test } from "uvu";
import { IPAM_PLUGIN } from "./exec.ts";

export type Requirement = {
  /** What is needed, e.g. "/usr/lib/cni/bridge (Debian containernetworking-plugins)". */
  what: string;
  ok: boolean;
  /** true for the plugin under test itself: its absence always fails, never skips. */
  always?: boolean;
};

export const inCI = (): boolean => {
  const v = process.env.CI ?? "";
  return v !== "" && v !== "0" && v.toLowerCase() !== "false";
};

export function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export const isRoot = (): boolean => process.getuid?.() === 0;

export function needExecutable(path: string, pkg: string): Requirement {
  return { what: `${path} (Debian package ${pkg})`, ok: executable(path) };
}

export function needRoot(): Requirement {
  return { what: "root (network namespaces need CAP_NET_ADMIN and CAP_SYS_ADMIN)", ok: isRoot() };
}

export function needPluginUnderTest(): Requirement {
  return {
    what: `the IPAM plugin under test at ${IPAM_PLUGIN} (run \`npm run build\`, or set BERTH_IPAM)`,
    ok: existsSync(IPAM_PLUGIN) && executable(IPAM_PLUGIN),
    always: true,
  };
}

/** True when the plugin under test is Debian's host-local (the reference), not berth-ipam. */
export function underTestIsReference(): boolean {
  try {
    return basename(realpathSync(IPAM_PLUGIN)) === "host-local";
  } catch {
    return basename(IPAM_PLUGIN) === "host-local";
  }
}

export type Define<T> = (name: string, fn: (ctx: T) => Promise<void> | void) => void;

/**
 * Registers tests on `suite` when every requirement holds. Otherwise each test is registered as
 * a failure (CI, or the plugin under test missing) or a skip (local run), and the reason is
 * printed once.
 */
export function gated<T>(suite: Test<T>, stage: string, reqs: Requirement[]): { define: Define<T>; ready: boolean } {
  const missing = reqs.filter((r) => !r.ok);
  if (missing.length === 0) {
    return { define: (name, fn) => suite(name, (ctx) => fn(ctx)), ready: true };
  }
  const why = missing.map((r) => r.what).join("; ");
  const fail = inCI() || missing.some((r) => r.always);
  process.stderr.write(
    `${stage}: ${fail ? "FAILING" : "SKIPPING"} every test: missing ${why}${fail ? "" : " (CI=true turns this into failures)"}\n`,
  );
  return {
    define: (name) => {
      if (fail) {
        suite(name, () => {
          throw new Error(`${stage}: missing ${why}`);
        });
      } else {
        suite.skip(name);
      }
    },
    ready: false,
  };
}
