// packaging/examples: every file parses and is valid, checked against the real peers where one
// exists (Debian's reference plugins, the built binaries) and by the rules a runtime or the
// kubelet applies.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { isIPv4, isIPv6 } from "node:net";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  DEFAULT_PROVIDER_BIN_DIR,
  EXAMPLES,
  KUBELET_CONFIG_PATH,
  KUBELET_DROPIN_PATH,
  binary,
  run,
  scratch,
  cleanScratch,
} from "./fixture.ts";

const test = suite("packaging: examples");
test.after.each(cleanScratch);

const REFERENCE_PLUGINS = "/usr/lib/cni";
const HOST_LOCAL = join(REFERENCE_PLUGINS, "host-local");
type Json = Record<string, unknown>;

const CNI_DIR = join(EXAMPLES, "cni");
const cniFiles = (): string[] => readdirSync(CNI_DIR).sort();
const readJson = (f: string): Json => JSON.parse(readFileSync(f, "utf8")) as Json;

// --- addresses, for checking subnets and gateways without trusting the code under test ---
type Cidr = { family: 4 | 6; net: bigint; bits: number };

function ipValue(ip: string): { family: 4 | 6; value: bigint } | undefined {
  if (isIPv4(ip)) return { family: 4, value: ip.split(".").reduce((a, o) => (a << 8n) | BigInt(o), 0n) };
  if (!isIPv6(ip) || ip.includes(".")) return undefined;
  const [head = "", tail] = ip.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  return { family: 6, value: groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g, 16)), 0n) };
}

function parseCidr(text: string): Cidr | undefined {
  const [ip = "", len, extra] = text.split("/");
  const v = ipValue(ip);
  if (!v || len === undefined || extra !== undefined || !/^\d+$/.test(len)) return undefined;
  const width = v.family === 4 ? 32 : 128;
  const bits = Number(len);
  if (bits > width) return undefined;
  const host = (1n << BigInt(width - bits)) - 1n;
  if ((v.value & host) !== 0n) return undefined; // host bits set: host-local rejects it too
  return { family: v.family, net: v.value, bits };
}

function contains(c: Cidr, ip: string): boolean {
  const v = ipValue(ip.split("/")[0] ?? "");
  if (!v || v.family !== c.family) return false;
  const width = c.family === 4 ? 32 : 128;
  return v.value >> BigInt(width - c.bits) === c.net >> BigInt(width - c.bits);
}

// --- CNI network configuration (SPEC.md "Section 1: Network configuration format") ---
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/; // the reference libcni/skel name rule

/** The plugin entries of a .conflist, or the single plugin of a .conf. */
function pluginsOf(file: string, conf: Json): Json[] {
  if (file.endsWith(".conflist")) {
    assert.ok(Array.isArray(conf.plugins) && conf.plugins.length > 0, `${file}: plugins must be a non-empty list`);
    assert.is(conf.type, undefined, `${file}: a list has no top-level type`);
    return conf.plugins as Json[];
  }
  assert.ok(file.endsWith(".conf"), `${file}: runtimes load .conf, .conflist and .json only`);
  assert.is(conf.plugins, undefined, `${file}: a .conf holds one plugin`);
  return [conf];
}

function ipamOf(file: string): { conf: Json; plugin: Json; ipam: Json } {
  const conf = readJson(join(CNI_DIR, file));
  const withIpam = pluginsOf(file, conf).filter((p) => p.ipam !== undefined);
  assert.is(withIpam.length, 1, `${file}: one plugin delegates to IPAM`);
  const plugin = withIpam[0]!;
  return { conf, plugin, ipam: plugin.ipam as Json };
}

/** What a runtime (libcni) hands the main plugin and, through it, the IPAM plugin. */
function ipamStdin(file: string, dataDir: string): string {
  const { conf, plugin, ipam } = ipamOf(file);
  return JSON.stringify({ ...plugin, cniVersion: conf.cniVersion, name: conf.name, ipam: { ...ipam, dataDir } });
}

async function cni(
  plugin: string,
  command: string,
  containerId: string,
  stdin: string,
): Promise<{ code: number; out: Json }> {
  const r = await run(plugin, [], {
    env: {
      CNI_COMMAND: command,
      CNI_CONTAINERID: containerId,
      CNI_NETNS: "/var/run/netns/berth-example",
      CNI_IFNAME: "eth0",
      CNI_PATH: REFERENCE_PLUGINS,
    },
    stdin,
  });
  return { code: r.code, out: r.stdout.trim() ? (JSON.parse(r.stdout) as Json) : {} };
}

test("there are the three CNI examples: bridge, dual-stack, standalone .conf", () => {
  assert.equal(cniFiles(), ["10-berth-bridge.conflist", "20-berth-dual-stack.conflist", "30-berth-ptp.conf"]);
});

test("every CNI example is a valid network configuration the reference plugins accept", async () => {
  const names = new Set<string>();
  for (const file of cniFiles()) {
    const conf = readJson(join(CNI_DIR, file));
    assert.type(conf.name, "string", file);
    assert.ok(NAME.test(conf.name as string), `${file}: invalid network name`);
    assert.not.ok(names.has(conf.name as string), `${file}: network names must be unique`);
    names.add(conf.name as string);
    for (const p of pluginsOf(file, conf)) {
      assert.type(p.type, "string", `${file}: every plugin has a type`);
      if (file.endsWith(".conflist")) {
        assert.is(p.name, undefined, `${file}: the runtime injects name into list entries`);
        assert.is(p.cniVersion, undefined, `${file}: the runtime injects cniVersion into list entries`);
      }
      // The plugin exists and speaks the example's version (reference plugins 1.1 stop at 1.0.0).
      const bin = join(REFERENCE_PLUGINS, p.type as string);
      assert.ok(existsSync(bin), `${file}: no reference plugin ${p.type} in ${REFERENCE_PLUGINS}`);
      const v = await cni(bin, "VERSION", "", JSON.stringify({ cniVersion: conf.cniVersion }));
      assert.is(v.code, 0);
      assert.ok(
        (v.out.supportedVersions as string[]).includes(conf.cniVersion as string),
        `${file}: ${p.type} does not speak ${String(conf.cniVersion)}`,
      );
    }
    const { ipam } = ipamOf(file);
    assert.is(ipam.type, "berth-ipam", file);
    const ipamVersion = await cni(binary("berth-ipam"), "VERSION", "", "{}");
    assert.ok(
      (ipamVersion.out.supportedVersions as string[]).includes(conf.cniVersion as string),
      `${file}: berth-ipam does not speak ${String(conf.cniVersion)}`,
    );
  }
});

test("every ipam section is well formed: canonical subnets, gateways and ranges inside them, routes", () => {
  for (const file of cniFiles()) {
    const { ipam } = ipamOf(file);
    assert.ok(Array.isArray(ipam.ranges) && ipam.ranges.length > 0, `${file}: ranges`);
    for (const set of ipam.ranges as Json[][]) {
      assert.ok(Array.isArray(set) && set.length > 0, `${file}: each range set is a non-empty list`);
      for (const r of set) {
        const subnet = parseCidr(String(r.subnet));
        assert.ok(subnet, `${file}: subnet ${String(r.subnet)} is not a canonical CIDR`);
        for (const k of ["gateway", "rangeStart", "rangeEnd"] as const) {
          if (r[k] !== undefined)
            assert.ok(contains(subnet, String(r[k])), `${file}: ${k} ${String(r[k])} outside ${String(r.subnet)}`);
        }
      }
    }
    for (const route of (ipam.routes as Json[] | undefined) ?? []) {
      assert.ok(parseCidr(String(route.dst)), `${file}: route dst ${String(route.dst)}`);
    }
    assert.is(ipam.dataDir, "/var/lib/cni/networks", `${file}: host-local's default store location`);
  }
});

test("the dual-stack example has one IPv4 and one IPv6 range set and a default route for each", () => {
  const { ipam } = ipamOf("20-berth-dual-stack.conflist");
  const families = (ipam.ranges as Json[][]).map((set) => parseCidr(String(set[0]!.subnet))!.family);
  assert.equal(families, [4, 6]);
  assert.equal(
    (ipam.routes as Json[]).map((r) => r.dst),
    ["0.0.0.0/0", "::/0"],
  );
});

for (const file of ["10-berth-bridge.conflist", "20-berth-dual-stack.conflist", "30-berth-ptp.conf"]) {
  test(`${file}: its ipam section allocates with host-local and berth-ipam, the same addresses`, async () => {
    const results: Json[] = [];
    for (const plugin of [HOST_LOCAL, binary("berth-ipam")]) {
      const dataDir = scratch("ipam-data");
      const stdin = ipamStdin(file, dataDir);
      const a = await cni(plugin, "ADD", "example-a", stdin);
      assert.is(a.code, 0, `${plugin} ADD: ${JSON.stringify(a.out)}`);
      const b = await cni(plugin, "ADD", "example-b", stdin);
      assert.is(b.code, 0, `${plugin} ADD: ${JSON.stringify(b.out)}`);
      const ipsA = (a.out.ips as Json[]).map((i) => i.address);
      const ipsB = (b.out.ips as Json[]).map((i) => i.address);
      const { ipam } = ipamOf(file);
      assert.is(ipsA.length, (ipam.ranges as unknown[]).length, "one address per range set");
      for (const ip of [...ipsA, ...ipsB]) {
        assert.ok(
          (ipam.ranges as Json[][]).some((set) => set.some((r) => contains(parseCidr(String(r.subnet))!, String(ip)))),
          `${String(ip)} outside the ranges`,
        );
      }
      assert.not.ok(
        ipsA.some((ip) => ipsB.includes(ip)),
        "two containers never share an address",
      );
      for (const id of ["example-a", "example-b"])
        assert.is((await cni(plugin, "DEL", id, stdin)).code, 0, `${plugin} DEL`);
      results.push({ ips: a.out.ips, routes: a.out.routes });
    }
    assert.equal(results[1], results[0], "berth-ipam answers the example like host-local");
  });
}

// --- kubelet CredentialProviderConfig (kubelet.config.k8s.io/v1) ---
const KUBELET_DIR = join(EXAMPLES, "kubelet");
const KUBELET_CONFIG = join(KUBELET_DIR, "image-credential-provider-config.yaml");
const DROPIN = join(KUBELET_DIR, "20-berth-credential-provider.conf");

/**
 * One registry host of each ECR form (AWS docs: ECR endpoints, dual-stack, FIPS, China, ECR Public;
 * the sovereign and isolated partitions as cloud-provider-aws's ecrPattern accepts them).
 */
const ECR_HOSTS = [
  "111122223333.dkr.ecr.us-east-1.amazonaws.com",
  "111122223333.dkr.ecr-fips.us-gov-west-1.amazonaws.com",
  "111122223333.dkr-ecr.eu-west-1.on.aws",
  "111122223333.dkr-ecr-fips.us-east-2.on.aws",
  "111122223333.dkr.ecr.cn-north-1.amazonaws.com.cn",
  "111122223333.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn",
  "111122223333.dkr.ecr.eusc-de-east-1.amazonaws.eu",
  "111122223333.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu",
  "111122223333.dkr.ecr.us-iso-east-1.c2s.ic.gov",
  "111122223333.dkr.ecr.us-isob-east-1.sc2s.sgov.gov",
  "111122223333.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk",
  "111122223333.dkr.ecr.us-isof-south-1.csp.hci.ic.gov",
  "public.ecr.aws",
  "ecr-public.aws.com",
];
const NOT_ECR = [
  "docker.io",
  "registry.k8s.io",
  "111122223333.dkr.ecr.us-east-1.amazonaws.com.evil.example",
  "evil.example/111122223333.dkr.ecr.us-east-1.amazonaws.com",
  "111122223333.dkr.ecr.us-east-1.amazonaws.com:5000",
  "dkr.ecr.us-east-1.amazonaws.com",
  "public.ecr.aws.evil.example",
];

/**
 * The kubelet's matchImages rule, written independently here (pkg/credentialprovider URLsMatch):
 * same port, same number of dot-separated labels, each label a glob where `*` spans no dot.
 */
function kubeletMatch(pattern: string, image: string): boolean {
  const split = (s: string) => {
    const slash = s.indexOf("/");
    const hostPort = slash < 0 ? s : s.slice(0, slash);
    const [host = "", port = ""] = hostPort.split(":");
    return { labels: host.split("."), port, path: slash < 0 ? "" : s.slice(slash) };
  };
  const p = split(pattern);
  const i = split(image);
  if (p.port !== i.port || p.labels.length !== i.labels.length) return false;
  const glob = (g: string) => new RegExp(`^${g.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`);
  return p.labels.every((l, k) => glob(l).test(i.labels[k]!)) && i.path.startsWith(p.path);
}

type Provider = { name: string; apiVersion: string; matchImages: string[]; defaultCacheDuration: string } & Json;

function kubeletConfig(): { apiVersion: string; kind: string; providers: Provider[] } & Json {
  return parseYaml(readFileSync(KUBELET_CONFIG, "utf8"), { uniqueKeys: true }) as {
    apiVersion: string;
    kind: string;
    providers: Provider[];
  } & Json;
}

test("the kubelet config is a CredentialProviderConfig v1 naming the installed binary", () => {
  const c = kubeletConfig();
  assert.is(c.apiVersion, "kubelet.config.k8s.io/v1");
  assert.is(c.kind, "CredentialProviderConfig");
  assert.equal(Object.keys(c).sort(), ["apiVersion", "kind", "providers"]);
  assert.is(c.providers.length, 1);
  const p = c.providers[0]!;
  // The kubelet execs <bin-dir>/<name>: the name must be the file install.sh writes.
  assert.is(p.name, "berth-credential-provider");
  assert.is(p.apiVersion, "credentialprovider.kubelet.k8s.io/v1");
  const known = ["name", "matchImages", "defaultCacheDuration", "apiVersion", "args", "env", "tokenAttributes"];
  for (const k of Object.keys(p))
    assert.ok(known.includes(k), `unknown provider field ${k} (the kubelet decodes strictly)`);
  const m = /^(\d+)h$/.exec(p.defaultCacheDuration);
  assert.ok(m && Number(m[1]) > 0 && Number(m[1]) < 12, "cached for less than an ECR token's 12 hours");
});

test("matchImages cover every ECR host form, each pattern is needed, and nothing else matches", () => {
  const patterns = kubeletConfig().providers[0]!.matchImages;
  for (const host of ECR_HOSTS) {
    assert.ok(
      patterns.some((p) => kubeletMatch(p, `${host}/team/app:v1`)),
      `no matchImages entry covers ${host}`,
    );
  }
  for (const p of patterns) {
    assert.ok(
      ECR_HOSTS.some((h) => kubeletMatch(p, `${h}/app`)),
      `${p} matches none of the ECR host forms`,
    );
  }
  for (const image of NOT_ECR) {
    assert.not.ok(
      patterns.some((p) => kubeletMatch(p, `${image}/app`)),
      `${image} must not be sent to the provider`,
    );
  }
});

test("berth-credential-provider validate-config accepts the example and matches every ECR form (kubelet rules)", async () => {
  const bin = binary("berth-credential-provider");
  const ok = await run(bin, ["validate-config", KUBELET_CONFIG], { env: {} });
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, "valid CredentialProviderConfig (1 provider)");
  for (const host of ECR_HOSTS) {
    const r = await run(bin, ["validate-config", KUBELET_CONFIG, "--image", `${host}/team/app:v1`], { env: {} });
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, `provider "berth-credential-provider" matches ${host}/team/app:v1`);
  }
  for (const image of NOT_ECR) {
    const r = await run(bin, ["validate-config", KUBELET_CONFIG, "--image", `${image}/app`], { env: {} });
    assert.match(r.stdout, `provider "berth-credential-provider" does not match ${image}/app`);
  }
  // The validator is not a rubber stamp: the same file with one field misspelt fails.
  const broken = join(scratch("kubelet"), "broken.yaml");
  writeFileSync(
    broken,
    readFileSync(KUBELET_CONFIG, "utf8").replace("defaultCacheDuration:", "defaultCacheDurationX:"),
  );
  const bad = await run(bin, ["validate-config", broken], { env: {} });
  assert.is.not(bad.code, 0, "a misspelt field must be rejected");
});

test("the systemd drop-in passes both kubelet flags with the paths install.sh uses", () => {
  const text = readFileSync(DROPIN, "utf8");
  const lines = text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#"));
  assert.is(lines[0], "[Service]");
  const env = lines.find((l) => l.startsWith("Environment="));
  assert.ok(env, "Environment= line");
  const m = /^Environment="BERTH_KUBELET_ARGS=(.*)"$/.exec(env);
  assert.ok(m, env);
  const flags = m[1]!.split(" ");
  assert.equal(flags.sort(), [
    `--image-credential-provider-bin-dir=${DEFAULT_PROVIDER_BIN_DIR}`,
    `--image-credential-provider-config=${KUBELET_CONFIG_PATH}`,
  ]);
  const exec = lines.filter((l) => l.startsWith("ExecStart="));
  assert.is(exec[0], "ExecStart=", "ExecStart is reset before being restated");
  assert.is(exec.length, 2);
  for (const v of [
    "$KUBELET_KUBECONFIG_ARGS",
    "$KUBELET_CONFIG_ARGS",
    "$KUBELET_KUBEADM_ARGS",
    "$KUBELET_EXTRA_ARGS",
    "$BERTH_KUBELET_ARGS",
  ]) {
    assert.ok(exec[1]!.split(" ").includes(v), `ExecStart keeps ${v}`);
  }
  // Drop-ins apply in file-name order: this one must come after kubeadm's 10-kubeadm.conf.
  const name = KUBELET_DROPIN_PATH.split("/").pop()!;
  assert.ok(name > "10-kubeadm.conf" && name.endsWith(".conf"));
});

test.run();
