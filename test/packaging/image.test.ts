// The installer image for real: packaging/Dockerfile built with Debian's podman from a base made
// here (a busybox-static rootfs imported as an image, nothing pulled), then run the way
// packaging/daemonset/berth-installer.yaml runs its init container: its command checked against
// the image's entry point, its args, its securityContext as podman flags, and a scratch "host"
// directory bind-mounted at every volumeMount from the hostPath its volume names.
//
// Sandbox facts (as in test/podman): crun refuses this VM's cgroup setup, so runc; explicit
// default_ulimits; all podman storage, run and tmp state in a temp dir (vfs driver). Each podman
// runs in a private mount namespace with a tmpfs on /var/lib, so the blob-info cache podman
// writes under /var/lib/containers whatever --root says stays off the machine.
import { spawn } from "node:child_process";
import {
  appendFileSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, relative } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseAllDocuments } from "yaml";
import { privateMountArgs, UNSHARE } from "../helpers/mount-ns.ts";
import { gated, needExecutable, needRoot } from "../helpers/peers.ts";
import { type PodmanRun, podmanStorageArgs, runPodman, showRun, writePodmanConfig } from "../helpers/podman.ts";
import { lstatTree } from "../helpers/tree.ts";
import {
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_PROVIDER_BIN_DIR,
  KUBELET_CONFIG_PATH,
  KUBELET_DROPIN_PATH,
  PACKAGING,
  PRIMARY,
  ROOT,
  VERSION,
  type Release,
  cleanScratch,
  releaseOnce,
  scratch,
} from "./fixture.ts";

const PODMAN = "/usr/bin/podman";
const BUSYBOX = "/bin/busybox";
const BASE = "localhost/berth-test-busybox:installer";
const IMAGE = "localhost/berth-installer:test";
const CORRUPT = "localhost/berth-installer:corrupt";

const test = suite("packaging: the installer image, built with podman and run as the DaemonSet says");
test.after.each(cleanScratch);
const { define, ready } = gated(test, "installer image", [
  needRoot(),
  needExecutable(PODMAN, "podman"),
  needExecutable("/usr/sbin/runc", "runc"),
  needExecutable("/usr/bin/conmon", "conmon"),
  needExecutable(BUSYBOX, "busybox-static"),
  needExecutable(UNSHARE, "util-linux"),
]);

type Run = PodmanRun;
let dir = "";

function podman(args: string[], stdin?: Buffer, timeoutMs = 180_000): Promise<Run> {
  return runPodman(
    UNSHARE,
    privateMountArgs('mount -t tmpfs -o mode=0755 berth-podman /var/lib && exec "$@"', [
      PODMAN,
      ...podmanStorageArgs(dir),
      ...args,
    ]),
    dir,
    stdin,
    timeoutMs,
  );
}

const show = showRun;

/** Debian's static busybox and a link per applet, as an uncompressed tar of a rootfs. */
async function busyboxRootfs(): Promise<Buffer> {
  const fs = join(dir, "rootfs");
  for (const d of ["bin", "tmp", "etc"]) mkdirSync(join(fs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(fs, "bin", "busybox"));
  const tar = (args: string[]) =>
    new Promise<Buffer>((done, fail) => {
      const c = spawn("/bin/sh", args, { stdio: ["ignore", "pipe", "inherit"] });
      const out: Buffer[] = [];
      c.stdout.on("data", (d: Buffer) => out.push(d));
      c.on("error", fail);
      c.on("close", (code) => (code === 0 ? done(Buffer.concat(out)) : fail(new Error(`exit ${code}`))));
    });
  return tar([
    "-c",
    'cd "$1/bin" && for a in $(./busybox --list); do [ "$a" = busybox ] || ln -s busybox "$a"; done && cd "$1" && chmod 1777 tmp && tar -c .',
    "sh",
    fs,
  ]);
}

// --- the DaemonSet, as the kubelet would read it ---
type Json = Record<string, unknown>;
type Mount = { name: string; mountPath: string; readOnly?: boolean };
type Init = { command: string[]; args: string[]; securityContext: Json; volumeMounts: Mount[] };
type Volume = { name: string; hostPath: { path: string; type?: string } };

function daemonSet(): { pod: Json; init: Init; volumes: Volume[] } {
  const text = readFileSync(join(PACKAGING, "daemonset", "berth-installer.yaml"), "utf8");
  const ds = parseAllDocuments(text)[0]!.toJS() as Json;
  const pod = ((ds.spec as Json).template as Json).spec as Json;
  return { pod, init: (pod.initContainers as Init[])[0]!, volumes: pod.volumes as Volume[] };
}

/** podman flags for the init container's securityContext and the pod's hostNetwork. */
function securityFlags(pod: Json, init: Init): string[] {
  const sc = init.securityContext as {
    runAsUser?: number;
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
  };
  return [
    ...(sc.runAsUser !== undefined ? ["--user", String(sc.runAsUser)] : []),
    ...(sc.readOnlyRootFilesystem ? ["--read-only", "--read-only-tmpfs=false"] : []),
    ...(sc.allowPrivilegeEscalation === false ? ["--security-opt", "no-new-privileges"] : []),
    ...(sc.capabilities?.drop ?? []).flatMap((c) => ["--cap-drop", c]),
    ...(sc.capabilities?.add ?? []).flatMap((c) => ["--cap-add", c]),
    "--network",
    pod.hostNetwork ? "host" : "none",
  ];
}

/** The init container on a scratch host: each volumeMount bind-mounted from host + its hostPath (made if DirectoryOrCreate). */
function runInit(
  host: string,
  image: string,
  opts: { extraArgs?: string[]; extraMounts?: Mount[]; extraHostPaths?: Record<string, string> } = {},
) {
  const { pod, init, volumes } = daemonSet();
  const byName = new Map(volumes.map((v) => [v.name, v]));
  const mounts: string[] = [];
  for (const m of [...init.volumeMounts, ...(opts.extraMounts ?? [])]) {
    const path = byName.get(m.name)?.hostPath.path ?? opts.extraHostPaths?.[m.name];
    assert.ok(path, `volume ${m.name} is a hostPath`);
    const type = byName.get(m.name)?.hostPath.type;
    if (type === "DirectoryOrCreate" || opts.extraHostPaths?.[m.name]) mkdirSync(join(host, path), { recursive: true });
    mounts.push("--volume", `${join(host, path)}:${m.mountPath}${m.readOnly ? ":ro" : ""}`);
  }
  // Kubernetes: `command` replaces the image's ENTRYPOINT, `args` its CMD.
  return podman([
    "run",
    "--rm",
    ...securityFlags(pod, init),
    ...mounts,
    "--entrypoint",
    JSON.stringify(init.command),
    image,
    ...init.args,
    ...(opts.extraArgs ?? []),
  ]);
}

type Entry = { path: string; type: string; mode: string; ino: number; mtimeNs: bigint; link?: string };

function snapshot(root: string): Entry[] {
  return lstatTree(root).map(({ path: p, type, st }) => ({
    path: `/${relative(root, p)}`,
    type,
    mode: (Number(st.mode) & 0o7777).toString(8),
    ino: Number(st.ino),
    mtimeNs: st.mtimeNs,
    ...(type === "link" ? { link: readlinkSync(p) } : {}),
  }));
}

let rel: Release | undefined;
let envLimit = "";

if (ready) {
  // podman refuses a runroot path longer than 50 characters: a short directory of its own.
  dir = mkdtempSync("/tmp/berth-img-");
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  for (const d of ["root", "runroot", "tmp"]) mkdirSync(join(dir, d), { recursive: true });
  writePodmanConfig(dir, "runc");
  const imported = await podman(["import", "-", BASE], await busyboxRootfs());
  if (imported.code !== 0) envLimit = `podman import failed: ${show(imported)}`;
  else {
    const pre = await podman(["run", "--rm", "--network", "none", BASE, "true"]);
    if (pre.code !== 0) envLimit = `podman cannot run a container here (no berth involved): ${show(pre)}`;
  }
  if (envLimit) process.stderr.write(`installer image: SKIPPING every test: environment limit: ${envLimit}\n`);
}

const it: typeof define = (name, fn) => (envLimit ? test.skip(name) : define(name, fn));

/** The image built once, and a copy of it whose binary is corrupted after the build. */
async function images(): Promise<Release> {
  if (rel) return rel;
  const r = await releaseOnce();
  const context = scratch("context", { keep: true });
  linkSync(r.tarball, join(context, `${r.top}.tar.gz`));
  const built = await podman([
    "build",
    "--pull=never",
    "--build-arg",
    `BASE_IMAGE=${BASE}`,
    "--build-arg",
    `TARGETARCH=${r.arch}`,
    "--build-arg",
    `BERTH_VERSION=${VERSION}`,
    "--file",
    join(PACKAGING, "Dockerfile"),
    "--tag",
    IMAGE,
    context,
  ]);
  assert.is(built.code, 0, show(built));
  const bad = scratch("corrupt-context", { keep: true });
  copyFileSync(join(r.dir, "bin", PRIMARY.name), join(bad, PRIMARY.name));
  appendFileSync(join(bad, PRIMARY.name), "x");
  writeFileSync(join(bad, "Containerfile"), `FROM ${IMAGE}\nCOPY ${PRIMARY.name} /opt/berth/bin/${PRIMARY.name}\n`);
  const corrupt = await podman(["build", "--pull=never", "--file", join(bad, "Containerfile"), "--tag", CORRUPT, bad]);
  assert.is(corrupt.code, 0, show(corrupt));
  rel = r;
  return r;
}

const HOST_FILES = [
  join(DEFAULT_CNI_BIN_DIR, PRIMARY.name),
  join(DEFAULT_PROVIDER_BIN_DIR, "berth-credential-provider"),
];

it("the image's entry point is the DaemonSet's command; its default CMD and the DaemonSet's args install into /host alike", async () => {
  await images();
  const inspect = await podman([
    "image",
    "inspect",
    IMAGE,
    "--format",
    "{{json .Config.Entrypoint}}|{{json .Config.Cmd}}",
  ]);
  assert.is(inspect.code, 0, show(inspect));
  const [entry, cmd] = inspect.stdout
    .trim()
    .split("|")
    .map((s) => JSON.parse(s) as string[]);
  const { init } = daemonSet();
  assert.equal(init.command, entry);
  assert.equal(cmd, ["--root", "/host", "--skip-exec-check"]);
  assert.ok(init.args.includes("--root=/host"));
  assert.ok(init.args.includes("--skip-exec-check"), "the image's libraries are not the node's: as its CMD does");
  const shell = await podman([
    "run",
    "--rm",
    "--network",
    "none",
    "--entrypoint",
    "/bin/sh",
    IMAGE,
    "-c",
    "ls /opt/berth/bin",
  ]);
  assert.is(shell.code, 0, show(shell));
  assert.equal(shell.stdout.trim().split("\n").sort(), ["berth-credential-provider", "berth-ipam"]);
});

it("run as the DaemonSet runs it: the executable in the host's CNI dir, the credential provider a symbolic link to it, no config", async () => {
  const r = await images();
  const host = scratch("host");
  const run = await runInit(host, IMAGE);
  assert.is(run.code, 0, show(run));
  const files = snapshot(host).filter((e) => e.type !== "dir");
  assert.equal(
    files.map((e) => e.path),
    [...HOST_FILES].sort(),
    "both names, nothing else: no config unless asked, no temp file",
  );
  const [file, link] = HOST_FILES.map((f) => join(host, f)) as [string, string];
  assert.ok(statSync(file).isFile());
  assert.is((statSync(file).mode & 0o777).toString(8), "755");
  assert.ok(readFileSync(file).equals(readFileSync(join(r.dir, "bin", PRIMARY.name))), "the release's bytes");
  // Two hostPath volumes are two mounts: no hard link across them, so a link to the node's path.
  assert.is(readlinkSync(link), join(DEFAULT_CNI_BIN_DIR, PRIMARY.name));
  // Both names run on this "host": the file itself, and it under the link's name as a kubelet would exec it.
  for (const [name, argv0] of [
    [PRIMARY.name, file],
    ["berth-credential-provider", link],
  ] as const) {
    const v = await new Promise<string>((done, fail) => {
      const c = spawn(file, ["--version"], { argv0, env: {}, stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      c.stdout.on("data", (d: Buffer) => (out += d.toString()));
      c.on("error", fail);
      c.on("close", () => done(out));
    });
    assert.ok(v.startsWith(`${name} ${VERSION} `), v);
  }
});

it("a second run changes nothing on the host: same inodes, modes, mtimes, link", async () => {
  await images();
  const host = scratch("host");
  assert.is((await runInit(host, IMAGE)).code, 0);
  const before = snapshot(host);
  const again = await runInit(host, IMAGE);
  assert.is(again.code, 0, show(again));
  assert.equal(snapshot(host), before);
  assert.equal(
    again.stdout.trim().split("\n"),
    HOST_FILES.map((f) => `unchanged /host${f}`),
  );
});

it("configs only where asked: --kubelet-config with the kubelet's two directories mounted writes exactly those two files", async () => {
  await images();
  const host = scratch("host");
  const extra: Record<string, string> = {
    "kubelet-config": "/etc/kubernetes",
    "kubelet-dropin": "/etc/systemd/system/kubelet.service.d",
  };
  const run = await runInit(host, IMAGE, {
    extraArgs: ["--kubelet-config"],
    extraMounts: Object.entries(extra).map(([name, path]) => ({ name, mountPath: `/host${path}` })),
    extraHostPaths: extra,
  });
  assert.is(run.code, 0, show(run));
  assert.equal(
    snapshot(host)
      .filter((e) => e.type !== "dir")
      .map((e) => e.path),
    [...HOST_FILES, KUBELET_CONFIG_PATH, KUBELET_DROPIN_PATH].sort(),
  );
  for (const f of [KUBELET_CONFIG_PATH, KUBELET_DROPIN_PATH])
    assert.is((statSync(join(host, f)).mode & 0o777).toString(8), "644", f);
});

it("an image whose binary was corrupted after the build fails and leaves the host exactly as it was", async () => {
  await images();
  const host = scratch("host");
  assert.is((await runInit(host, IMAGE)).code, 0);
  const installed = snapshot(host);
  const bad = await runInit(host, CORRUPT);
  assert.is(bad.code, 1, show(bad));
  assert.match(bad.stderr, `checksum mismatch for bin/${PRIMARY.name}`);
  assert.equal(snapshot(host), installed, "the installed binary and link stay, no temp file");
  const fresh = scratch("host");
  const first = await runInit(fresh, CORRUPT);
  assert.is(first.code, 1);
  assert.equal(
    snapshot(fresh).filter((e) => e.type !== "dir"),
    [],
    "nothing written to a fresh host",
  );
});

it("the DaemonSet's volumes are exactly its mounts, each a hostPath at /host + its path", () => {
  const { init, volumes } = daemonSet();
  assert.equal(
    init.volumeMounts.map((m) => [m.name, m.mountPath]).sort(),
    volumes.map((v) => [v.name, `/host${v.hostPath.path}`]).sort(),
  );
  assert.ok(relative(ROOT, PACKAGING) === "packaging");
});

test.run();
