// The other architecture's build (arm64 on an amd64 machine), run here under Debian's
// qemu-user-static with the cross libc/libstdc++/libatomic as its root (-L): both program names,
// a real CNI ADD/CHECK/DEL/GC on a scratch data directory, the credential provider against the
// local AWS stand-in, and install.sh from the release into a scratch root. Emulation says
// nothing about speed; this is about correctness. Nothing here needs binfmt_misc: qemu is
// called explicitly, so install.sh's own exec check cannot run the binary and is skipped with
// its flag, and what it installed is run under qemu afterwards.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { startAwsEndpoint } from "../helpers/aws-endpoint.ts";
import { RUNTIMES } from "../../packaging/runtimes.ts";
import {
  CROSS_ARCH,
  DEFAULT_CNI_BIN_DIR,
  DEFAULT_PROVIDER_BIN_DIR,
  PROGRAM_NAMES,
  SHELL_ENV,
  VERSION,
  cleanScratch,
  crossBuild,
  releasesOnce,
  run,
  runAs,
  scratch,
} from "./fixture.ts";

const test = suite(`packaging: ${CROSS_ARCH} under qemu-user`);
test.after.each(cleanScratch);

const qemu = `/usr/bin/${RUNTIMES[CROSS_ARCH].qemu}`;
const ready = existsSync(qemu) && existsSync(join(RUNTIMES[CROSS_ARCH].sysroot, "lib"));
if (!ready)
  process.stderr.write(`${CROSS_ARCH}: ${qemu} or ${RUNTIMES[CROSS_ARCH].sysroot} missing (see .ci/apt-packages)\n`);
const it = ready || process.env.CI ? test : test.skip;

/** Runs a cross binary the way a runtime would, but through qemu: a clean environment, stdin given. */
function emulated(file: string, args: string[], env: Record<string, string> = {}, stdin = "") {
  const [cmd, ...pre] = runAs(CROSS_ARCH, file);
  return run(cmd!, [...pre, ...args], { env, stdin });
}

const bin = async (name: string) => join((await crossBuild()).bin, name);

it(`the build is an ${CROSS_ARCH} ELF, one file under both names`, async () => {
  const machine = { amd64: 62, arm64: 183 }[CROSS_ARCH];
  const files = await Promise.all(PROGRAM_NAMES.map(bin));
  for (const f of files) assert.is(readFileSync(f).subarray(0, 20).readUInt16LE(18), machine, f);
  assert.is(new Set(files.map((f) => statSync(f).ino)).size, 1);
});

it("--version under each name: the program's own line, nothing on stderr (V8 took the embedded code cache)", async () => {
  for (const p of PROGRAM_NAMES) {
    const r = await emulated(await bin(p), ["--version"]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stderr, "", `${p}: a rejected code cache would warn here`);
    assert.ok(r.stdout.startsWith(`${p} ${VERSION} (commit `), r.stdout);
  }
  const other = join(scratch("other-name"), "berth");
  symlinkSync(await bin("berth-ipam"), other);
  const usage = await emulated(other, ["--version"]);
  assert.is(usage.code, 2, "under another name: the usage");
  assert.match(usage.stderr, "berth runs as the program it is named");
});

const NET = "crossnet";
const conf = (dataDir: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    cniVersion: "1.1.0",
    name: NET,
    type: "bridge",
    ipam: {
      type: "berth-ipam",
      dataDir,
      ranges: [[{ subnet: "10.77.0.0/24", rangeStart: "10.77.0.10", rangeEnd: "10.77.0.11" }]],
      routes: [{ dst: "0.0.0.0/0" }],
    },
    ...extra,
  });
const cniEnv = (command: string, id: string) => ({
  CNI_COMMAND: command,
  CNI_CONTAINERID: id,
  CNI_NETNS: "/var/run/netns/cross",
  CNI_IFNAME: "eth0",
  CNI_PATH: "/opt/cni/bin",
});

it("berth-ipam: CNI VERSION, then ADD, CHECK, DEL and GC on a scratch data directory", async () => {
  const ipam = await bin("berth-ipam");
  const v = await emulated(ipam, [], { CNI_COMMAND: "VERSION" }, '{"cniVersion":"1.0.0"}');
  assert.is(v.code, 0, v.stderr);
  const version = JSON.parse(v.stdout) as { cniVersion: string; supportedVersions: string[] };
  assert.is(version.cniVersion, "1.0.0");
  assert.ok(version.supportedVersions.includes("1.1.0"));

  const data = scratch("cross-data");
  type Result = { ips: { address: string }[] };
  const call = (command: string, id: string, extra: Record<string, unknown> = {}) =>
    emulated(ipam, [], cniEnv(command, id), conf(data, extra));
  const add = async (id: string) => {
    const r = await call("ADD", id);
    assert.is(r.code, 0, r.stdout + r.stderr);
    return JSON.parse(r.stdout) as Result;
  };
  // A pool of two addresses, so "full" and "freed again" are both visible from outside.
  const a = await add("pod-a");
  const b = await add("pod-b");
  assert.equal([a.ips[0]!.address, b.ips[0]!.address].sort(), ["10.77.0.10/24", "10.77.0.11/24"]);
  const full = await call("ADD", "pod-x");
  assert.is(full.code, 1, "the pool is full");
  assert.equal(await add("pod-a"), a, "a repeated ADD returns the same result");
  const check = await call("CHECK", "pod-a", { prevResult: a });
  assert.is(check.code, 0, check.stdout + check.stderr);
  const del = await call("DEL", "pod-a");
  assert.is(del.code, 0, del.stdout + del.stderr);
  assert.equal((await add("pod-x")).ips[0]!.address, a.ips[0]!.address, "DEL freed pod-a's address");
  assert.is((await call("DEL", "pod-x")).code, 0);
  const gc = await call("GC", "", { "cni.dev/valid-attachments": [{ containerID: "pod-c", ifname: "eth0" }] });
  assert.is(gc.code, 0, gc.stdout + gc.stderr);
  // pod-b was not among the valid attachments: GC released it, so two new containers fit.
  await add("pod-c");
  await add("pod-d");
  assert.ok(readdirSync(join(data, NET)).length > 0, "the store is in the scratch data directory");
});

it("berth-credential-provider: a CredentialProviderRequest answered from the local AWS stand-in", async () => {
  const endpoint = await startAwsEndpoint();
  try {
    const image = "123456789012.dkr.ecr.us-west-2.amazonaws.com/app:v1";
    const r = await emulated(
      await bin("berth-credential-provider"),
      ["get-credentials"],
      endpoint.env(),
      JSON.stringify({ apiVersion: "credentialprovider.kubelet.k8s.io/v1", kind: "CredentialProviderRequest", image }),
    );
    assert.is(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { kind: string; auth: Record<string, { username: string; password: string }> };
    assert.is(res.kind, "CredentialProviderResponse");
    assert.equal(res.auth["123456789012.dkr.ecr.us-west-2.amazonaws.com"], {
      username: "AWS",
      password: "ecr-password-0123456789",
    });
    assert.equal(
      endpoint.calls.map((c) => [c.api, c.scope?.region]),
      [["ecr", "us-west-2"]],
      "one GetAuthorizationToken, signed for the image's region",
    );
  } finally {
    await endpoint.close();
  }
});

it(`install.sh from the ${CROSS_ARCH} release into a scratch root: the exec check refuses, --skip-exec-check installs, both names run`, async () => {
  const rel = (await releasesOnce()).cross;
  const root = scratch("cross-root");
  const refused = await run("/bin/sh", [join(rel.dir, "install.sh"), "--root", root], { env: SHELL_ENV });
  assert.is(refused.code, 1, "this machine cannot exec the other architecture without qemu");
  assert.match(refused.stderr, "bin/berth-ipam does not run on this machine");
  assert.equal(readdirSync(join(root, DEFAULT_CNI_BIN_DIR)), [], "nothing installed, no temp file left");
  const r = await run("/bin/sh", [join(rel.dir, "install.sh"), "--root", root, "--skip-exec-check"], {
    env: SHELL_ENV,
  });
  assert.is(r.code, 0, r.stderr);
  const installed = {
    "berth-ipam": join(root, DEFAULT_CNI_BIN_DIR, "berth-ipam"),
    "berth-credential-provider": join(root, DEFAULT_PROVIDER_BIN_DIR, "berth-credential-provider"),
  } as Record<string, string>;
  assert.is(statSync(installed["berth-ipam"]!).ino, statSync(installed["berth-credential-provider"]!).ino);
  for (const p of PROGRAM_NAMES) {
    const v = await emulated(installed[p]!, ["--version"]);
    assert.is(v.code, 0, v.stderr);
    assert.ok(v.stdout.startsWith(`${p} ${VERSION} `), v.stdout);
  }
});

test.run();
