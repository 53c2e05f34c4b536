// Debian's containerd 1.6 run by a test, isolated from the machine's own containerd:
//
// - A "holder" process is pid 1 of a new pid namespace and owns a new, private mount namespace,
//   inside a network namespace made for the test (netns.ts). containerd, its shims and every pod
//   run in those namespaces. The holder mounts tmpfs over /run and /var/lib first, because
//   containerd 1.6 writes a few machine paths whatever its config says (the shims' sockets in
//   /run/containerd/s, libcni's result cache in /var/lib/cni); there they land in memory that
//   goes with the namespace. root, state, the gRPC socket, the CNI dirs and the registry config
//   are in the test's temp dir.
// - Everything goes when the holder goes: the kernel kills every process of a pid namespace when
//   its pid 1 exits, and the mounts (pod netns bind mounts, /dev/shm, rootfs) die with the mount
//   namespace. The holder exits when its stdin (a pipe from the test process) closes, so even a
//   SIGKILLed test leaves nothing running; `unshare --kill-child` ties it to the unshare process
//   the test kills on cleanup. Stale holders, cgroups and temp dirs of test processes that no
//   longer exist are swept at start, as netns.ts sweeps namespaces.
// - Pods get cgroups under one `cgroup_parent` named for the test process, removed at the end.
import { type ChildProcess, spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execBinary } from "./exec.ts";
import { addNetns, delNetns, NSENTER, netnsPath, onCleanup } from "./netns.ts";
import { removeDir, tempDir } from "./temp.ts";

export const CONTAINERD = "/usr/bin/containerd";
export const CTR = "/usr/bin/ctr";
export const CONTAINERD_SHIM = "/usr/bin/containerd-shim-runc-v2";
export const RUNC = "/usr/sbin/runc";
export const UNSHARE = "/usr/bin/unshare";
export const PERL = "/usr/bin/perl";
export const CGROUP_ROOT = "/sys/fs/cgroup";

const HOLDER_MARK = "berth-containerd-holder";
const MINE = `berth-test-${process.pid}-`;

// pid 1 of the namespace: reaps every orphan (shims are reparented here) and exits when stdin
// reaches EOF or on SIGTERM; its exit takes the whole pid namespace with it.
const HOLDER_PERL = [
  `$0 = "${HOLDER_MARK} $ARGV[0]";`,
  'use POSIX ":sys_wait_h";',
  "$SIG{TERM} = sub { exit 0 };",
  'my $in = ""; vec($in, fileno(STDIN), 1) = 1;',
  "while (1) {",
  "  1 while waitpid(-1, WNOHANG) > 0;",
  "  my $n = select(my $r = $in, undef, undef, 0.5);",
  "  if ($n > 0) { my $b; exit 0 unless sysread(STDIN, $b, 1); }",
  "}",
].join(" ");

export type Network = {
  /** The conflist containerd loads (one per runtime handler; `""` is the default runtime). */
  conflist: Record<string, unknown>;
};

export type ContainerdOptions = {
  tag: string;
  /** containerd 1.6's `cni.bin_dir` is one directory: put every plugin (or a symlink) there. */
  cniBinDir: string;
  /** By runtime handler; `""` is the default `runc` handler, others are extra runc handlers. */
  networks: Record<string, Network>;
  sandboxImage: string;
  /** `registry.config_path`: a directory of `<host>/hosts.toml`. */
  registryConfigPath?: string;
};

export type Run = { code: number; stdout: string; stderr: string };

export type Containerd = {
  dir: string;
  /** The network namespace containerd, the bridge and the pods' host ends live in. */
  hostNs: string;
  socket: string;
  /** Cgroup parent for pods (pass it as linux.cgroup_parent, as the kubelet does). */
  cgroupParent: string;
  /** containerd's pid as this process sees it (0 when not running). */
  pid(): number;
  /** Starts containerd (again) with the same config; resolves when the socket answers. */
  start(): Promise<void>;
  /** SIGKILL containerd only: shims and pods keep running in the holder's namespaces. */
  kill(): Promise<void>;
  /** containerd's own log (stdout and stderr). */
  log(): string;
  /** `ctr` against this containerd, run in its namespaces. */
  ctr(args: string[], stdin?: Buffer): Promise<Run>;
  /** Runs a program inside the holder's mount and network namespaces. */
  exec(file: string, args: string[], stdin?: Buffer, env?: Record<string, string>): Promise<Run>;
  /**
   * Starts a long-running program inside all of the holder's namespaces (pid too), so it goes
   * when the holder goes. Its stdout and stderr are piped; do not kill it yourself (that would
   * only kill nsenter): stop() takes it.
   */
  spawn(file: string, args: string[], env?: Record<string, string>): ChildProcess;
  /** A path inside the holder's mount namespace, reachable from this process. */
  inside(path: string): string;
  /**
   * Stop everything (idempotent): containerd, shims, pods, their mounts, the pods' cgroups, the
   * node namespace and the temp dir. Also run by the netns.ts cleanup hooks.
   */
  stop(): void;
};

const run = (file: string, args: string[], stdin?: Buffer, env: Record<string, string> = {}): Promise<Run> =>
  execBinary(file, { args, stdin, env, timeoutMs: 120_000 });

const sleep = (ms: number) => new Promise((d) => setTimeout(d, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function waitFor<T>(
  what: string,
  timeoutMs: number,
  probe: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function tomlString(s: string): string {
  return JSON.stringify(s);
}

function configToml(dir: string, opts: ContainerdOptions, confDirs: Record<string, string>): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    "version = 2",
    `root = ${tomlString(join(dir, "root"))}`,
    `state = ${tomlString(join(dir, "state"))}`,
    "[grpc]",
    `  address = ${tomlString(join(dir, "containerd.sock"))}`,
    "[ttrpc]",
    `  address = ${tomlString(join(dir, "containerd.sock.ttrpc"))}`,
    // The opt plugin defaults to /opt/containerd on the machine.
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${tomlString(join(dir, "opt"))}`,
    `[${cri}]`,
    `  sandbox_image = ${tomlString(opts.sandboxImage)}`,
    "  disable_apparmor = true",
    // Without CAP_SYS_RESOURCE (not in this machine's bounding set) the oom_score_adj of -998 the
    // CRI plugin gives a sandbox cannot be set, and runc fails ("can't get final child's PID").
    "  restrict_oom_score_adj = true",
    // Pod netns bind mounts under the state dir, not /var/run/netns (containerd 1.6 option).
    "  netns_mounts_under_state_dir = true",
    `[${cri}.containerd]`,
    // native: plain directories, no overlay mounts, works on any filesystem.
    '  snapshotter = "native"',
    '  default_runtime_name = "runc"',
  ];
  for (const handler of Object.keys(opts.networks)) {
    const name = handler || "runc";
    lines.push(
      `[${cri}.containerd.runtimes.${name}]`,
      '  runtime_type = "io.containerd.runc.v2"',
      ...(handler ? [`  cni_conf_dir = ${tomlString(confDirs[handler] ?? "")}`, "  cni_max_conf_num = 1"] : []),
      `[${cri}.containerd.runtimes.${name}.options]`,
      `  BinaryName = ${tomlString(RUNC)}`,
      "  SystemdCgroup = false",
    );
  }
  lines.push(
    `[${cri}.cni]`,
    `  bin_dir = ${tomlString(opts.cniBinDir)}`,
    `  conf_dir = ${tomlString(confDirs[""] ?? join(dir, "cni-conf-none"))}`,
    "  max_conf_num = 1",
  );
  if (opts.registryConfigPath)
    lines.push(`[${cri}.registry]`, `  config_path = ${tomlString(opts.registryConfigPath)}`);
  return `${lines.join("\n")}\n`;
}

/** Cgroup directories at the top of each hierarchy whose name starts with `prefix`. */
function cgroupDirs(match: (name: string) => boolean): string[] {
  const out: string[] = [];
  const hierarchies = existsSync(join(CGROUP_ROOT, "cgroup.controllers"))
    ? [CGROUP_ROOT]
    : readdirSync(CGROUP_ROOT)
        .map((h) => join(CGROUP_ROOT, h))
        .filter((h) => {
          try {
            return readdirSync(h).length > 0;
          } catch {
            return false;
          }
        });
  for (const h of hierarchies) {
    try {
      for (const name of readdirSync(h)) if (match(name)) out.push(join(h, name));
    } catch {
      // not a directory (a v1 symlink like cpu,cpuacct is listed under its own name too)
    }
  }
  return out;
}

/** The cgroup directories (one per hierarchy) of a cgroup parent, if any exist. */
export function cgroupLeftovers(parent: string): string[] {
  return cgroupDirs((n) => `/${n}` === parent);
}

/** rmdir a cgroup tree bottom-up (cgroup dirs are removed with rmdir, never rm -r). */
function removeCgroupTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    return;
  }
  for (const e of entries) removeCgroupTree(join(dir, e));
  try {
    rmdirSync(dir);
  } catch {
    // still has processes (they are being killed) or already gone
  }
}

function pidOfDeadOwner(name: string): number | undefined {
  const m = /^berth-test-(\d+)-/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid !== process.pid && !alive(pid) ? pid : undefined;
}

/**
 * Holders, cgroups and temp dirs left by containerd stages whose test process no longer exists
 * (killed with SIGKILL before its holder noticed, say). Namespaces are netns.ts's sweepStale.
 */
export async function sweepStaleContainerd(): Promise<void> {
  const killed: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p)) continue;
    let cmd = "";
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, "utf8");
    } catch {
      continue;
    }
    const m = new RegExp(`^${HOLDER_MARK} \\S*/(berth-test-\\d+-)`).exec(cmd);
    if (m?.[1] && pidOfDeadOwner(m[1]) !== undefined) {
      process.kill(Number(p), "SIGKILL");
      killed.push(Number(p));
    }
  }
  for (const pid of killed) await waitFor(`stale holder ${pid} to exit`, 10_000, () => (alive(pid) ? undefined : true));
  for (const d of cgroupDirs((n) => pidOfDeadOwner(n) !== undefined)) removeCgroupTree(d);
  for (const name of readdirSync(tmpdir())) {
    if (/^berth-test-\d+-containerd-/.test(name) && pidOfDeadOwner(name) !== undefined)
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

let counter = 0;

export async function startContainerd(opts: ContainerdOptions): Promise<Containerd> {
  const dir = tempDir(`containerd-${opts.tag}`);
  const hostNs = addNetns(`${opts.tag}-node`);
  const socket = join(dir, "containerd.sock");
  const cgroupParent = `/${MINE}cri-${++counter}`;
  const confDirs: Record<string, string> = {};
  for (const [handler, net] of Object.entries(opts.networks)) {
    const conf = join(dir, `cni-conf-${handler || "default"}`);
    mkdirSync(conf, { recursive: true });
    writeFileSync(join(conf, "10-berth.conflist"), JSON.stringify(net.conflist, null, 2));
    confDirs[handler] = conf;
  }
  const configFile = join(dir, "config.toml");
  writeFileSync(configFile, configToml(dir, opts, confDirs));
  const logFile = join(dir, "containerd.log");

  const unshare: ChildProcess = spawn(
    NSENTER,
    [
      `--net=${netnsPath(hostNs)}`,
      "--",
      UNSHARE,
      "--pid",
      "--fork",
      "--kill-child",
      "--mount",
      "--propagation",
      "private",
      "--mount-proc",
      "--",
      "/bin/sh",
      "-c",
      'mount -t tmpfs -o mode=0755 berth-run /run && mount -t tmpfs -o mode=0755 berth-var-lib /var/lib && exec "$@"',
      "sh",
      PERL,
      "-e",
      HOLDER_PERL,
      dir,
    ],
    { stdio: ["pipe", "ignore", "pipe"], env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" } },
  );
  let holderErr = "";
  unshare.stderr?.on("data", (d: Buffer) => (holderErr += d.toString()));
  const unsharePid = unshare.pid ?? 0;
  const holder = await waitFor("the namespace holder", 10_000, () => {
    const c = childrenOf(unsharePid)[0];
    if (c && readFileSync(`/proc/${c}/cmdline`, "utf8").startsWith(HOLDER_MARK)) return c;
    if (unshare.exitCode !== null) throw new Error(`namespace holder exited ${unshare.exitCode}: ${holderErr}`);
    return undefined;
  });

  let daemon: ChildProcess | undefined;
  let daemonPid = 0;
  let stopped = false;

  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    if (alive(unsharePid)) process.kill(unsharePid, "SIGKILL");
    if (alive(holder)) process.kill(holder, "SIGKILL");
    // The pid namespace collapses with its pid 1; wait (bounded) so the cgroups are empty.
    const end = Date.now() + 10_000;
    const nap = new Int32Array(new SharedArrayBuffer(4));
    while (alive(holder) && Date.now() < end) Atomics.wait(nap, 0, 0, 20); // stop() runs in exit handlers: no await
    for (const d of cgroupLeftovers(cgroupParent)) removeCgroupTree(d);
    delNetns(hostNs);
    removeDir(dir);
  };
  onCleanup(stop);

  const exec = (file: string, args: string[], stdin?: Buffer, env?: Record<string, string>) =>
    run(NSENTER, ["-t", String(holder), "-m", "-n", "--", file, ...args], stdin, env);
  const spawnInside = (file: string, args: string[], env: Record<string, string> = {}): ChildProcess =>
    spawn(NSENTER, ["-t", String(holder), "-m", "-p", "-n", "--", file, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env },
    });

  const start = async (): Promise<void> => {
    const fd = openSync(logFile, "a");
    daemon = spawn(NSENTER, ["-t", String(holder), "-m", "-p", "-n", "--", CONTAINERD, "--config", configFile], {
      stdio: ["ignore", fd, fd],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" },
    });
    closeSync(fd);
    const nsenterPid = daemon.pid ?? 0;
    daemonPid = await waitFor("containerd to start", 10_000, () => {
      if (daemon?.exitCode !== null)
        throw new Error(`containerd exited ${daemon?.exitCode}:\n${readFileSync(logFile, "utf8")}`);
      return childrenOf(nsenterPid)[0];
    });
    await waitFor("containerd's socket", 30_000, async () => {
      if (daemon?.exitCode !== null)
        throw new Error(`containerd exited ${daemon?.exitCode}:\n${readFileSync(logFile, "utf8")}`);
      if (!existsSync(socket)) return undefined;
      const r = await run(CTR, ["--address", socket, "version"]);
      return r.code === 0 ? true : undefined;
    });
  };

  const kill = async (): Promise<void> => {
    const pid = daemonPid;
    if (!pid) return;
    process.kill(pid, "SIGKILL");
    await waitFor("containerd to die", 10_000, () => (daemon?.exitCode !== null || !alive(pid) ? true : undefined));
    daemonPid = 0;
  };

  await start();
  return {
    dir,
    hostNs,
    socket,
    cgroupParent,
    pid: () => daemonPid,
    start,
    kill,
    log: () => readFileSync(logFile, "utf8"),
    ctr: (args, stdin) => exec(CTR, ["--address", socket, ...args], stdin),
    exec,
    spawn: spawnInside,
    inside: (path) => join(`/proc/${holder}/root`, path),
    stop,
  };
}
