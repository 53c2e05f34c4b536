// validate-config on the built binary: the config's field set follows its apiVersion and the
// kubelet release (--kubelet-version, --feature-gates), annotation keys and the audience are
// checked exactly as the kubelet does (no stricter), and a provider entry that runs this binary
// has its args and env read by the kubelet path's own parser, with --image explained through them.
// The rule-by-rule corpus is test/unit/kubelet-config-corpus.test.ts.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { ROOT } from "../helpers/exec.ts";
import { endpointSuite, run } from "./helpers.ts";

const s = endpointSuite("credential-provider: validate-config");
const { test } = s;

let n = 0;
function file(text: string | object): string {
  const f = join(s.tmp, `config-${++n}.yaml`);
  writeFileSync(f, typeof text === "string" ? text : JSON.stringify(text));
  return f;
}
const validate = (f: string, ...args: string[]) => run("", {}, ["validate-config", f, ...args]);

const PROVIDER = {
  name: "berth-credential-provider",
  apiVersion: "credentialprovider.kubelet.k8s.io/v1",
  matchImages: ["*.dkr.ecr.*.amazonaws.com", "docker.io"],
  defaultCacheDuration: "12h",
  args: ["get-credentials"],
};
const config = (p: object, apiVersion = "kubelet.config.k8s.io/v1") => ({
  apiVersion,
  kind: "CredentialProviderConfig",
  providers: [{ ...PROVIDER, ...p }],
});
const TOKEN = {
  serviceAccountTokenAudience: "sts.amazonaws.com",
  cacheType: "ServiceAccount",
  requireServiceAccount: false,
  optionalServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"],
};

test("tokenAttributes in a v1beta1 or v1alpha1 config: refused, as the kubelet's strict decoder does", async () => {
  for (const v of ["kubelet.config.k8s.io/v1beta1", "kubelet.config.k8s.io/v1alpha1"]) {
    const r = await validate(file(config({ tokenAttributes: TOKEN }, v)));
    assert.is(r.code, 1, r.stdout);
    assert.match(r.stdout, `unknown field "tokenAttributes" (${v} CredentialProvider has no tokenAttributes`);
  }
  assert.is((await validate(file(config({ tokenAttributes: TOKEN })))).code, 0, "the v1 config has it");
});

test("no stricter than the kubelet: upper-case annotation keys and a blank audience pass", async () => {
  const r = await validate(
    file(
      config({
        tokenAttributes: {
          ...TOKEN,
          serviceAccountTokenAudience: " ",
          optionalServiceAccountAnnotationKeys: ["EKS.Amazonaws.com/ECR-Role-ARN", "eks.amazonaws.com/ecr-role-arn"],
        },
      }),
    ),
  );
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, "valid CredentialProviderConfig (1 provider) for kubelet 1.35");
});

test("--kubelet-version: cacheType stops a 1.33 kubelet; the 1.33 form needs the feature gate; the default is the newest", async () => {
  const with134 = file(config({ tokenAttributes: TOKEN }));
  const { cacheType: _, ...withoutCacheType } = TOKEN;
  const form133 = file(config({ tokenAttributes: withoutCacheType }));
  const r35 = await validate(with134);
  assert.is(r35.code, 0, r35.stdout);
  assert.match(r35.stdout, "for kubelet 1.35 (KubeletServiceAccountTokenForCredentialProviders on)");
  assert.is((await validate(with134, "--kubelet-version", "1.34")).code, 0);
  const r33 = await validate(with134, "--kubelet-version", "1.33");
  assert.is(r33.code, 1);
  assert.match(r33.stdout, 'unknown field "cacheType" (kubelet 1.33 has no tokenAttributes.cacheType');
  const gateOff = await validate(form133, "--kubelet-version=1.33");
  assert.is(gateOff.code, 1);
  assert.match(gateOff.stdout, "feature gate is disabled");
  const gateOn = await validate(
    form133,
    "--kubelet-version=1.33",
    "--feature-gates=KubeletServiceAccountTokenForCredentialProviders=true",
  );
  assert.is(gateOn.code, 0, gateOn.stdout);
  const r34 = await validate(form133, "--kubelet-version=1.34");
  assert.is(r34.code, 1);
  assert.match(r34.stdout, "cacheType: Required value");
  const bad = await validate(with134, "--kubelet-version=1.32");
  assert.is(bad.code, 1);
  assert.match(bad.stdout, "unknown --kubelet-version 1.32; expected 1.33, 1.34, 1.35");
});

test("a directory needs kubelet 1.34", async () => {
  const r = await validate(s.tmp, "--kubelet-version=1.33");
  assert.is(r.code, 1);
  assert.match(r.stdout, "kubelet 1.33 reads one file");
});

test("the provider's own args and env go through the kubelet path's parser: what every request would refuse is an error", async () => {
  const cases: [object, string][] = [
    [{ args: ["get-credentials", "--role-map", "123456789012=not-an-arn"] }, '"not-an-arn" is not an IAM role ARN'],
    [
      { args: ["get-credentials", "--registry-mirror=docker.io=mirror.example.com"] },
      "mirror.example.com is not an ECR registry host",
    ],
    [{ env: [{ name: "BERTH_TIMEOUT", value: "2m" }] }, 'invalid timeout "2m"'],
    [{ args: ["--token-mode", "closed"] }, 'invalid token mode "closed"'],
    [
      { args: ["--role-map", "123456789012=web-identity:arn:aws:iam::123456789012:role/pull"] },
      "is web-identity: but the provider has no tokenAttributes",
    ],
  ];
  for (const [p, message] of cases) {
    const r = await validate(file(config(p)));
    assert.is(r.code, 1, `${JSON.stringify(p)}: ${r.stdout}`);
    assert.match(r.stdout, message);
    assert.match(r.stdout, "error: ");
  }
});

test("which entries are ours: berth-credential-provider, ecr-credential-provider, and names given with --provider", async () => {
  const bad = { args: ["--role-map", "123456789012=not-an-arn"] };
  assert.is((await validate(file(config({ ...bad, name: "ecr-credential-provider" })))).code, 1);
  const other = file(config({ ...bad, name: "acme-ecr" }));
  assert.is((await validate(other)).code, 0, "another program's args are its own business");
  const r = await validate(other, "--provider", "acme-ecr");
  assert.is(r.code, 1);
  assert.match(r.stdout, "acme-ecr would refuse every request");
});

test("--image is explained with the entry's own args and env: the mirror, the region, the role", async () => {
  const f = file(
    config({
      args: [
        "get-credentials",
        "--registry-mirror=docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/dockerhub",
        "--role-map=123456789012=arn:aws:iam::123456789012:role/mirror-pull",
      ],
    }),
  );
  const r = await validate(f, "--image", "docker.io/library/nginx");
  assert.is(r.code, 0, r.stdout);
  assert.match(
    r.stdout,
    'provider "berth-credential-provider" would ask ECR in us-east-1 for 123456789012.dkr.ecr.us-east-1.amazonaws.com, as arn:aws:iam::123456789012:role/mirror-pull (STS AssumeRole with the node\'s credentials); auth key docker.io',
  );
  assert.not.match(r.stdout, "not an ECR registry host");
});

test("--image with tokenAttributes says where a pod's role comes from; a role annotation the kubelet will not pass is a warning", async () => {
  const f = file(
    config({ tokenAttributes: { ...TOKEN, optionalServiceAccountAnnotationKeys: ["example.com/other"] } }),
  );
  const r = await validate(f, "--image", "123456789012.dkr.ecr.us-west-2.amazonaws.com/app");
  assert.is(r.code, 0, r.stdout);
  assert.match(r.stdout, "warning:");
  assert.match(r.stdout, "none of the role annotations (eks.amazonaws.com/ecr-role-arn)");
  assert.match(r.stdout, "with a service-account token: the role in eks.amazonaws.com/ecr-role-arn");
});

/** The README's CredentialProviderConfig blocks, each with the releases its first comment names. */
function readmeConfigs(): { text: string; versions: string[]; gates: string | undefined }[] {
  const readme = readFileSync(join(ROOT, "credential-provider/README.md"), "utf8");
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .filter((b) => b.includes("kind: CredentialProviderConfig"));
  return blocks.map((text) => {
    const first = /^# kubelet ([0-9., and]+)/.exec(text);
    const versions = first ? [...(first[1] as string).matchAll(/1\.3[3-5]/g)].map((m) => m[0]) : ["1.35"];
    const gates = /--feature-gates=(\S+)/.exec(text.split("\n")[0] ?? "")?.[1];
    return { text, versions, gates };
  });
}

test("every CredentialProviderConfig in the README is valid for the releases it names (and the 1.34 form is not for 1.33)", async () => {
  const blocks = readmeConfigs();
  assert.ok(blocks.length >= 3, `${blocks.length} config blocks`);
  for (const b of blocks) {
    const f = file(b.text);
    for (const v of b.versions) {
      const r = await validate(f, `--kubelet-version=${v}`, ...(b.gates ? [`--feature-gates=${b.gates}`] : []));
      assert.is(r.code, 0, `kubelet ${v}: ${r.stdout}\n${b.text}`);
    }
    if (b.text.includes("cacheType")) {
      const r33 = await validate(
        f,
        "--kubelet-version=1.33",
        "--feature-gates=KubeletServiceAccountTokenForCredentialProviders=true",
      );
      assert.is(r33.code, 1, "a config with cacheType stops a 1.33 kubelet");
      assert.ok(!b.versions.includes("1.33"), "so the README must not offer it for 1.33");
    }
  }
});

test.run();
