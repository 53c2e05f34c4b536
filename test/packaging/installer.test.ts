// The cluster installer: packaging/Dockerfile and packaging/daemonset/*.yaml, read statically
// against the release they carry: the Dockerfile's steps, the DaemonSet's pod (tolerations,
// update strategy, securityContext, mounts), and its install command run against a scratch root
// standing in for the host. image.test.ts builds and runs the image itself with podman.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { PACKAGING, PROGRAM_NAMES, SHELL_ENV, VERSION, releaseOnce, run, scratch, cleanScratch } from "./fixture.ts";

const test = suite("packaging: installer image and DaemonSet");
test.after.each(cleanScratch);

type Instruction = { op: string; args: string };

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function dockerfile(): Instruction[] {
  const text = readFileSync(join(PACKAGING, "Dockerfile"), "utf8").replace(/\\\n/g, " ");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const sp = l.indexOf(" ");
      return { op: l.slice(0, sp).toUpperCase(), args: l.slice(sp + 1).trim() };
    });
}

const substitute = (s: string, vars: Record<string, string>): string =>
  s.replace(/\$\{(\w+)\}|\$(\w+)/g, (all, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? all);

type Json = Record<string, unknown>;
type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  volumeMounts?: { name: string; mountPath: string }[];
} & Json;
type Volume = { name: string; hostPath?: { path: string; type?: string } };

function daemonSets(): { file: string; ds: Json }[] {
  const dir = join(PACKAGING, "daemonset");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) =>
      parseAllDocuments(readFileSync(join(dir, f), "utf8"), { uniqueKeys: true }).map((d) => {
        assert.equal(d.errors, [], f);
        return { file: f, ds: d.toJS() as Json };
      }),
    );
}

function installerPod(): { spec: Json; init: Container; volumes: Volume[] } {
  const all = daemonSets();
  assert.is(all.length, 1, "one DaemonSet manifest");
  const { ds } = all[0]!;
  const spec = ((ds.spec as Json).template as Json).spec as Json;
  const inits = spec.initContainers as Container[];
  assert.is(inits.length, 1);
  return { spec, init: inits[0]!, volumes: spec.volumes as Volume[] };
}

test("the Dockerfile ADDs the tarball release.ts writes and runs the install.sh inside it", async () => {
  const rel = await releaseOnce();
  const ins = dockerfile();
  // The base is an argument (CI passes a locally made busybox image), declared before FROM.
  assert.is(ins[0]!.op, "ARG");
  assert.match(ins[0]!.args, /^BASE_IMAGE=\S*busybox\S*$/);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the Containerfile's own ${BASE_IMAGE}
  assert.equal(ins[1], { op: "FROM", args: "${BASE_IMAGE}" });
  const args = ins.filter((i) => i.op === "ARG").map((i) => i.args);
  assert.ok(args.includes("TARGETARCH") && args.includes("BERTH_VERSION"));
  const vars = { TARGETARCH: rel.arch, BERTH_VERSION: VERSION };
  const add = ins.filter((i) => i.op === "ADD");
  assert.is(add.length, 1);
  const [src, dest] = substitute(add[0]!.args, vars).split(/\s+/);
  assert.is(src, `${rel.top}.tar.gz`, "the build context is the release directory");
  assert.ok(existsSync(join(rel.out, src!)));
  assert.is(dest, "/opt/");
  // ADD unpacks into /opt/<top>; the RUN step renames that to /opt/berth.
  const runs = ins.filter((i) => i.op === "RUN").map((i) => substitute(i.args, vars));
  assert.ok(
    runs.some((r) => r.includes(`mv "/opt/${rel.top}" /opt/berth`)),
    runs.join("\n"),
  );
  assert.ok(statSync(join(rel.dir, "install.sh")).mode & 0o100, "install.sh is executable in the tarball");
  const entry = JSON.parse(ins.find((i) => i.op === "ENTRYPOINT")!.args) as string[];
  assert.equal(entry, ["/opt/berth/install.sh"]);
  const cmd = JSON.parse(ins.find((i) => i.op === "CMD")!.args) as string[];
  // busybox has no glibc: the binaries cannot run in the image, SHA256SUMS is the check there.
  assert.equal(cmd, ["--root", "/host", "--skip-exec-check"]);
  assert.ok(runs.some((r) => r.includes("/opt/berth/install.sh --root /tmp/selftest --skip-exec-check")));
  assert.not.ok(
    runs.some((r) => /apt-get|apk /.test(r)),
    "nothing is fetched at build time",
  );
});

test("the DaemonSet is apps/v1, selects its own pods, runs on every node, outside the pod network", () => {
  const { ds } = daemonSets()[0]!;
  assert.is(ds.apiVersion, "apps/v1");
  assert.is(ds.kind, "DaemonSet");
  const spec = ds.spec as Json;
  const selector = (spec.selector as Json).matchLabels as Record<string, string>;
  const labels = ((spec.template as Json).metadata as Json).labels as Record<string, string>;
  assert.ok(Object.keys(selector).length > 0);
  for (const [k, v] of Object.entries(selector)) assert.is(labels[k], v, `template label ${k}`);
  const pod = installerPod().spec;
  // A node without a working CNI is tainted not-ready: the installer must tolerate that, and must
  // not need the CNI plugin it installs to get its own sandbox.
  assert.ok((pod.tolerations as Json[]).some((t) => t.operator === "Exists" && t.key === undefined));
  assert.is(pod.hostNetwork, true);
  assert.is((pod.containers as Container[]).length, 1);
  assert.equal(pod.tolerations, [{ operator: "Exists" }], "one toleration for every taint: control-plane nodes too");
  assert.is(pod.nodeSelector && (pod.nodeSelector as Json)["kubernetes.io/os"], "linux");
});

test("an update cannot leave a node without a binary: surge first, none unavailable, nothing ever removes a file", () => {
  const { ds } = daemonSets()[0]!;
  const strategy = (ds.spec as Json).updateStrategy as Json;
  assert.is(strategy.type, "RollingUpdate");
  const rolling = strategy.rollingUpdate as Json;
  // The new pod's init container installs (by rename) before the old pod is stopped; if it fails,
  // the old pod stays and the rollout stops.
  assert.is(rolling.maxUnavailable, 0);
  assert.is(rolling.maxSurge, 1);
  const pod = installerPod().spec;
  const all = [...(pod.initContainers as Container[]), ...(pod.containers as Container[])];
  for (const c of all) {
    assert.is(c.lifecycle, undefined, `${c.name}: no preStop/postStart hook that could remove a binary`);
    assert.not.ok(
      [...(c.command ?? []), ...(c.args ?? [])].some((a) => a.includes("uninstall")),
      c.name,
    );
  }
});

test("securityContext: root without privilege escalation, every capability dropped but DAC_OVERRIDE, read-only root", () => {
  const { init } = installerPod();
  const sc = init.securityContext as Json;
  assert.is(sc.runAsUser, 0);
  assert.is(sc.readOnlyRootFilesystem, true, "install.sh writes only into the mounted host directories");
  assert.is(sc.allowPrivilegeEscalation, false);
  assert.is(sc.privileged, undefined);
  assert.equal(sc.capabilities, { drop: ["ALL"], add: ["DAC_OVERRIDE"] });
  const pod = installerPod().spec;
  assert.is(pod.hostPID, undefined);
  assert.is(pod.automountServiceAccountToken, false);
});

test("the init container runs the image's install.sh with --root /host, and every directory is a hostPath mount", () => {
  const { init, volumes } = installerPod();
  const entry = JSON.parse(dockerfile().find((i) => i.op === "ENTRYPOINT")!.args) as string[];
  assert.equal(init.command, entry);
  const args = init.args ?? [];
  assert.ok(args.includes("--root=/host"));
  const mounts = init.volumeMounts ?? [];
  const byName = new Map(volumes.map((v) => [v.name, v]));
  for (const m of mounts) assert.ok(byName.has(m.name), `volume ${m.name} is defined`);
  for (const v of volumes)
    assert.ok(
      mounts.some((m) => m.name === v.name),
      `volume ${v.name} is mounted`,
    );
  const dirs = args.filter((a) => a.startsWith("--cni-bin-dir=") || a.startsWith("--credential-provider-bin-dir="));
  assert.is(dirs.length, 2);
  for (const a of dirs) {
    const dir = a.slice(a.indexOf("=") + 1);
    const mount = mounts.find((m) => m.mountPath === `/host${dir}`);
    assert.ok(mount, `${a}: /host${dir} is mounted`);
    const hp = byName.get(mount.name)!.hostPath;
    assert.is(hp?.path, dir, `${a}: mounted from the host's ${dir}`);
    assert.is(hp?.type, "DirectoryOrCreate");
  }
});

test("the init container's install command, run against a scratch host, installs into the mounted paths", async () => {
  const rel = await releaseOnce();
  const { init, volumes } = installerPod();
  const host = scratch("host");
  const args = (init.args ?? []).map((a) => (a === "--root=/host" ? `--root=${host}` : a));
  const r = await run("/bin/sh", [join(rel.dir, "install.sh"), ...args], { env: SHELL_ENV });
  assert.is(r.code, 0, r.stderr);
  const hostPaths = volumes.map((v) => v.hostPath!.path);
  const installed: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else installed.push(p.slice(host.length));
    }
  };
  walk(host);
  assert.is(installed.length, PROGRAM_NAMES.length);
  for (const f of installed)
    assert.ok(
      hostPaths.some((h) => f.startsWith(`${h}/`)),
      `${f} lands on a hostPath volume`,
    );
  const again = await run("/bin/sh", [join(rel.dir, "install.sh"), ...args], { env: SHELL_ENV });
  assert.is(again.code, 0);
  assert.not.match(again.stdout, /installed|replaced/, "a restarted init container changes nothing");
});

test.run();
