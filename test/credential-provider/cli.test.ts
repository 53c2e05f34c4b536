// The human CLI: --help, --version, get-credentials IMAGE with secrets masked, and
// validate-config with the kubelet's rules and matchImages globbing.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { CREDENTIAL_PROVIDER, execBinary, ROOT } from "../helpers/exec.ts";
import { failed, noSecrets, PRIVATE, run, SA_TOKEN, endpointSuite } from "./helpers.ts";
import { readFileSync } from "node:fs";

const s = endpointSuite("credential-provider: CLI");
const { test } = s;

const pkgVersion = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }).version;

test("--version prints the version and the commit", async () => {
  const r = await run("", {}, ["--version"]);
  assert.is(r.code, 0);
  assert.match(
    r.stdout,
    new RegExp(
      `^berth-credential-provider ${pkgVersion.replace(/\./g, "\\.")} \\(commit (?:[0-9a-f]{7,40}(?:-dirty)?|unknown)\\)\\n$`,
    ),
  );
});

test("--help lists the commands and every flag with its environment variable", async () => {
  const r = await run("", {}, ["--help"]);
  assert.is(r.code, 0);
  for (const s of [
    "get-credentials <image>",
    "validate-config <file>",
    "--cache-dir",
    "BERTH_CACHE_DIR",
    "--registry-mirror",
    "BERTH_REGISTRY_MIRRORS",
    "--role-map",
    "BERTH_ROLE_MAP",
    "--timeout",
    "BERTH_TIMEOUT",
  ]) {
    assert.ok(r.stdout.includes(s), `help lacks ${s}`);
  }
});

test("a person at a terminal with no arguments gets the CLI, not a wait on stdin (script(1) gives it a pty)", async () => {
  const r = await execBinary("/usr/bin/script", {
    args: ["-qec", CREDENTIAL_PROVIDER, "/dev/null"],
    timeoutMs: 20_000,
  });
  assert.is(r.code, 1);
  assert.match(r.stdout, "name a command, or pipe a CredentialProviderRequest on stdin");
});

test("stdin from /dev/null is not a terminal: the kubelet path answers (empty input)", async () => {
  const r = await execBinary("/bin/sh", { args: ["-c", `exec "${CREDENTIAL_PROVIDER}" </dev/null`] });
  failed(r, "empty input on stdin");
});

test("a mistyped flag or command is refused with a pointer to --help", async () => {
  const r = await run("", {}, ["validate-config", "x", "--imgae", "y"]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /Unknown argument/);
  assert.match(r.stderr, "--help");
});

test("get-credentials IMAGE prints the kubelet's response with the password masked", async () => {
  const r = await run("", s.ep.env(), ["get-credentials", `${PRIVATE}/app:1.2`]);
  assert.is(r.code, 0, r.stderr);
  const shown = JSON.parse(r.stdout) as {
    apiVersion: string;
    auth: Record<string, { username: string; password: string }>;
  };
  assert.is(shown.apiVersion, "credentialprovider.kubelet.k8s.io/v1");
  assert.equal(shown.auth[PRIVATE], { username: "AWS", password: "<redacted: 23 characters>" });
  assert.not.ok(r.stdout.includes("ecr-password-0123456789"));
  noSecrets(r, ["ecr-password-0123456789"]);
  assert.match(r.stderr, "api: ecr in us-west-2");
  assert.match(r.stderr, "kubelet would accept the response: yes");
});

test("get-credentials --api-version v1alpha1 and a service-account token file", async () => {
  const tokenFile = join(s.tmp, "token");
  writeFileSync(tokenFile, SA_TOKEN);
  const r1 = await run("", s.ep.env(), ["get-credentials", "public.ecr.aws/x", "--api-version", "v1alpha1"]);
  assert.is(r1.code, 0, r1.stderr);
  assert.is((JSON.parse(r1.stdout) as { apiVersion: string }).apiVersion, "credentialprovider.kubelet.k8s.io/v1alpha1");
  const before = s.ep.calls.length;
  const r2 = await run("", s.ep.env(), [
    "get-credentials",
    `${PRIVATE}/x`,
    "--service-account-token-file",
    tokenFile,
    "--role-arn",
    "arn:aws:iam::123456789012:role/r",
  ]);
  assert.is(r2.code, 0, r2.stderr);
  assert.equal(
    s.ep.calls.slice(before).map((c) => c.api),
    ["sts", "ecr"],
  );
  noSecrets(r2, [SA_TOKEN]);
  assert.not.ok(r2.stdout.includes(SA_TOKEN));
});

test("get-credentials failure: one line, exit 1", async () => {
  failed(await run("", s.ep.env(), ["get-credentials", "x", "--api-version", "v2"]), "unknown --api-version v2");
});

const CONFIG = `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: berth-credential-provider
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    defaultCacheDuration: 12h
    args: [get-credentials]
    matchImages:
      - "*.dkr.ecr.*.amazonaws.com"
      - "*.dkr.ecr-fips.*.amazonaws.com"
      - "*.dkr-ecr.*.on.aws"
      - "*.dkr-ecr-fips.*.on.aws"
      - "*.dkr.ecr.*.amazonaws.com.cn"
      - "*.dkr-ecr.*.on.amazonwebservices.com.cn"
      - "public.ecr.aws"
`;

test("validate-config: the README's config is valid and covers FIPS, dual-stack, China, European Sovereign Cloud and both ECR Public hosts", async () => {
  const readme = readFileSync(join(ROOT, "credential-provider/README.md"), "utf8");
  const block = /```yaml\n((?:#[^\n]*\n)?apiVersion: kubelet\.config\.k8s\.io\/v1\n[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, "README has a CredentialProviderConfig yaml block");
  const file = join(s.tmp, "readme-config.yaml");
  writeFileSync(file, block as string);
  for (const image of [
    `${PRIVATE}/app`,
    "123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app",
    "123456789012.dkr-ecr.us-west-2.on.aws/app",
    "123456789012.dkr-ecr-fips.us-east-1.on.aws/app",
    "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app",
    "123456789012.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu/app",
    "ecr-public.aws.com/nginx/nginx",
    "123456789012.dkr-ecr.cn-northwest-1.on.amazonwebservices.com.cn/app",
    "public.ecr.aws/nginx/nginx",
  ]) {
    const r = await run("", {}, ["validate-config", file, "--image", image]);
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, "valid CredentialProviderConfig (1 provider)");
    assert.match(r.stdout, new RegExp(`provider "[^"]+" matches ${image.replace(/\./g, "\\.")} by`), image);
  }
});

test("the README tells one install story, install.sh's, and packaging's architectures", () => {
  const readme = readFileSync(join(ROOT, "credential-provider/README.md"), "utf8");
  const install = readFileSync(join(ROOT, "packaging/install.sh"), "utf8");
  const binDir = /DEFAULT_PROVIDER_BIN_DIR=(\S+)/.exec(install)?.[1];
  const config = /KUBELET_CONFIG=(\S+)/.exec(install)?.[1];
  assert.ok(binDir && config, "install.sh names its directories");
  assert.ok(readme.includes(`--image-credential-provider-bin-dir=${binDir}`), `the kubelet flag names ${binDir}`);
  assert.ok(readme.includes(`--image-credential-provider-config=${config}`), `the kubelet flag names ${config}`);
  const dirs = [...readme.matchAll(/--image-credential-provider-bin-dir[= ](\S+)/g)].map((m) => m[1]);
  assert.equal([...new Set(dirs)], [binDir], "no other bin directory");
  const arches = /Linux on (\w+) or (\w+)/.exec(readFileSync(join(ROOT, "packaging/README.md"), "utf8"));
  assert.ok(arches, "packaging/README.md names its architectures");
  assert.match(readme, `Linux on ${arches?.[1]} or ${arches?.[2]}`);
  assert.not.match(readme, /x86-64 only|Linux x86-64/);
});

test("validate-config --image: the kubelet's glob rules (* does not cross dots, ports must match)", async () => {
  const file = join(s.tmp, "c.yaml");
  writeFileSync(file, CONFIG.replace('      - "public.ecr.aws"\n', '      - "registry.local:5000/team"\n'));
  const check = async (image: string) => (await run("", {}, ["validate-config", file, "--image", image])).stdout;
  assert.match(
    await check("123456789012.dkr.ecr.us-west-2.amazonaws.com/x"),
    'matches 123456789012.dkr.ecr.us-west-2.amazonaws.com/x by "*.dkr.ecr.*.amazonaws.com"',
  );
  assert.match(await check("a.b.dkr.ecr.us-west-2.amazonaws.com/x"), "does not match");
  assert.match(await check("registry.local:5000/team/app"), 'by "registry.local:5000/team"');
  assert.match(await check("registry.local/team/app"), "no provider matches");
  assert.match(await check("registry.local:5000/other/app"), "no provider matches");
});

test("validate-config: the kubelet's rules, every error reported, exit 1", async () => {
  const file = join(s.tmp, "bad.yaml");
  writeFileSync(
    file,
    `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: a/b
    apiVersion: credentialprovider.kubelet.k8s.io/v1beta1
    matchImages: []
    defaultCacheDuration: -1s
    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      requireServiceAccount: true
  - name: a/b
    apiVersion: credentialprovider.kubelet.k8s.io/v2
    matchImages: ["bad host"]
    cacheDurationTypo: 1h
`,
  );
  const r = await run("", {}, ["validate-config", file]);
  assert.is(r.code, 1);
  for (const s of [
    "providers[0].name: Invalid value: \"a/b\": provider name cannot contain '/'",
    "providers[0].matchImages: Required value",
    'providers[0].defaultCacheDuration: Invalid value: "-1s": must be greater than or equal to 0',
    "tokenAttributes is only supported for credentialprovider.kubelet.k8s.io/v1",
    "providers[0].tokenAttributes.cacheType: Required value",
    'providers[1]: unknown field "cacheDurationTypo"',
    "providers[1].apiVersion: Unsupported value",
    'match image is invalid: parse "https://bad host": invalid character " " in host name',
    "providers[1].defaultCacheDuration: Required value",
    'providers[1].name: Duplicate value: "a/b"',
  ]) {
    assert.ok(r.stdout.includes(s), `missing: ${s}\n${r.stdout}`);
  }
});

test("validate-config: a directory is merged in lexicographic order (k8s 1.34); duplicate names across files fail", async () => {
  const dir = join(s.tmp, "conf.d");
  mkdirSync(dir);
  writeFileSync(join(dir, "10-ecr.yaml"), CONFIG);
  writeFileSync(
    join(dir, "20-other.json"),
    JSON.stringify({
      apiVersion: "kubelet.config.k8s.io/v1",
      kind: "CredentialProviderConfig",
      providers: [
        {
          name: "other",
          apiVersion: "credentialprovider.kubelet.k8s.io/v1",
          matchImages: ["quay.io"],
          defaultCacheDuration: "1h",
        },
      ],
    }),
  );
  writeFileSync(join(dir, "README"), "not a config");
  const r = await run("", {}, ["validate-config", dir, "--image", "quay.io/x"]);
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, "valid CredentialProviderConfig (2 providers)");
  assert.match(r.stdout, 'provider "other" matches quay.io/x');
  writeFileSync(join(dir, "30-dup.yaml"), CONFIG);
  const r2 = await run("", {}, ["validate-config", dir]);
  assert.is(r2.code, 1);
  assert.match(r2.stdout, 'duplicate provider name "berth-credential-provider" found in configuration file(s)');
});

test("validate-config: duplicate YAML keys and a missing file are errors", async () => {
  const file = join(s.tmp, "dup.yaml");
  writeFileSync(file, "kind: CredentialProviderConfig\nkind: CredentialProviderConfig\n");
  const r = await run("", {}, ["validate-config", file]);
  assert.is(r.code, 1);
  assert.match(r.stdout, /unique|duplicate/i);
  const r2 = await run("", {}, ["validate-config", join(s.tmp, "nope.yaml")]);
  assert.is(r2.code, 1);
  assert.match(r2.stdout, "ENOENT");
});

test.run();
