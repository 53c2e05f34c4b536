// Debian's podman with every piece of its state in one temp dir: storage flags, the environment
// naming its config files, and those files. Shared by the podman stage and the installer image test.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { execBinary } from "./exec.ts";

export type PodmanRun = { code: number; stdout: string; stderr: string };

/** podman's global flags that put root, runroot and tmp in dir, on the vfs driver. */
export function podmanStorageArgs(dir: string): string[] {
  return [
    "--root",
    join(dir, "root"),
    "--runroot",
    join(dir, "runroot"),
    "--tmpdir",
    join(dir, "tmp"),
    "--storage-driver",
    "vfs",
  ];
}

/** The environment that points podman at the config files in dir and nowhere else. */
export function podmanEnv(dir: string): Record<string, string> {
  return {
    PATH: "/usr/sbin:/usr/bin:/sbin:/bin",
    HOME: dir,
    TMPDIR: join(dir, "tmp"),
    CONTAINERS_CONF: join(dir, "containers.conf"),
    CONTAINERS_STORAGE_CONF: join(dir, "storage.conf"),
    CONTAINERS_REGISTRIES_CONF: join(dir, "registries.conf"),
  };
}

/**
 * containers.conf, storage.conf and registries.conf in dir. Explicit default_ulimits (no
 * CAP_SYS_RESOURCE here), cgroupfs, no events, file locks; network lines go in a [network] table.
 */
export function writePodmanConfig(dir: string, runtime: string, network: string[] = []): void {
  writeFileSync(
    join(dir, "containers.conf"),
    [
      "[containers]",
      'default_ulimits = ["nofile=1024:1024","nproc=4096:4096"]',
      ...(network.length > 0 ? ["[network]", ...network] : []),
      "[engine]",
      `runtime = "${runtime}"`,
      'cgroup_manager = "cgroupfs"',
      'events_logger = "none"',
      'lock_type = "file"',
      `tmp_dir = "${join(dir, "tmp")}"`,
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(dir, "storage.conf"),
    `[storage]\ndriver = "vfs"\ngraphroot = "${join(dir, "root")}"\nrunroot = "${join(dir, "runroot")}"\n`,
  );
  writeFileSync(join(dir, "registries.conf"), "unqualified-search-registries = []\n");
}

/** file (podman, or a wrapper that execs it) with args, under podmanEnv(dir). */
export async function runPodman(
  file: string,
  args: string[],
  dir: string,
  stdin: Buffer | undefined,
  timeoutMs: number,
): Promise<PodmanRun> {
  const { code, stdout, stderr } = await execBinary(file, { args, env: podmanEnv(dir), stdin, timeoutMs });
  return { code, stdout, stderr };
}

export const showRun = (r: PodmanRun): string => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
