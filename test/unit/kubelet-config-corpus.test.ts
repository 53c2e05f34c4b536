// validate-config's corpus: CredentialProviderConfigs, each with the verdict a kubelet 1.33, 1.34
// and 1.35 gives it (starts, or refuses to) and the rule of the kubelet it exercises, cited by
// file and function. Kubelet rules only: the provider names here are not ours, so no berth check
// of args or env applies. Sources (k8s.io/kubernetes pkg/credentialprovider/plugin on the
// release branches, k8s.io/kubelet config/v1*/types.go on release-1.33 to release-1.35):
const VALIDATE = "plugin/config.go validateCredentialProviderConfig";
const KEYS =
  "plugin/config.go validateServiceAccountAnnotationKeys (apimachinery IsQualifiedName on strings.ToLower(key))";
const DECODE = "plugin/config.go decode (plugin.go codecs: serializer.EnableStrict)";
const DECODE_KIND =
  "plugin/config.go decode: gvk.Kind / gvk.Group checks; plugin.go init: kubelet config v1, v1beta1, v1alpha1 in the scheme";
const TYPES_V1 = "kubelet config/v1/types.go CredentialProvider.TokenAttributes (only the v1 config type has it)";
const TYPES_BETA = "kubelet config/v1beta1 and config/v1alpha1 types.go CredentialProvider: no TokenAttributes field";
const TYPES_CACHE =
  "kubelet config/v1/types.go ServiceAccountTokenAttributes.CacheType (release-1.34 on; absent in release-1.33)";
const GATE =
  "plugin/config.go validateCredentialProviderConfig(saTokenForCredentialProviders); pkg/features/kube_features.go KubeletServiceAccountTokenForCredentialProviders (1.33 alpha off, 1.34 beta on)";
const READ_133 = "plugin/config.go readCredentialProviderConfigFile (release-1.33: os.ReadFile of one file)";
const READ_DIR =
  "plugin/config.go readCredentialProviderConfig (release-1.34 on: a directory's *.json, *.yaml, *.yml in lexicographic order)";
const REGISTER = "plugin/plugin.go RegisterCredentialProviderPlugins (exec.LookPath(<bin-dir>/<name>))";
const MATCH =
  'pkg/credentialprovider ParseSchemelessURL (url.Parse of "https://"+pattern), from validateCredentialProviderConfig';
const DURATION = "metav1.Duration UnmarshalJSON (time.ParseDuration) in decode; validateCredentialProviderConfig: >= 0";
const YAML11 = "sigs.k8s.io/yaml (go-yaml v2 resolve.go: y/yes/on are true) in decode";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { parseConfigYaml } from "../../credential-provider/config-yaml.ts";
import { KUBELET_VERSIONS, kubeletRules, validateConfig } from "../../credential-provider/kubelet-config.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

const test = suite("validate-config corpus: the kubelet's verdict per release");

/** Starts on 1.33, 1.34, 1.35. */
type Verdict = readonly [boolean, boolean, boolean];
const ALL: Verdict = [true, true, true];
const NONE: Verdict = [false, false, false];
const FROM_134: Verdict = [false, true, true];
const ONLY_133: Verdict = [true, false, false];

type Entry = {
  name: string;
  rule: string;
  /** one config file, or a directory of files */
  config: string | Record<string, string | null>;
  valid: Verdict;
  /** text every refusal must contain, or per release */
  expect?: string | readonly [string | undefined, string | undefined, string | undefined];
  featureGates?: string;
};

const J = (v: unknown) => JSON.stringify(v, null, 1);
const PROVIDER = {
  name: "ecr",
  apiVersion: "credentialprovider.kubelet.k8s.io/v1",
  matchImages: ["*.dkr.ecr.*.amazonaws.com"],
  defaultCacheDuration: "12h",
};
const doc = (providers: unknown[], configApiVersion = "kubelet.config.k8s.io/v1", extra: object = {}) =>
  J({ apiVersion: configApiVersion, kind: "CredentialProviderConfig", providers, ...extra });
const one = (p: object, configApiVersion?: string) => doc([{ ...PROVIDER, ...p }], configApiVersion);
const without = (k: keyof typeof PROVIDER) => {
  const { [k]: _, ...rest } = PROVIDER;
  return doc([rest]);
};

const corpus: Entry[] = [];
const add = (...e: Entry[]) => corpus.push(...e);

// A. The document.
add(
  { name: "minimal v1 config", rule: VALIDATE, config: one({}), valid: ALL },
  { name: "minimal v1beta1 config", rule: DECODE_KIND, config: one({}, "kubelet.config.k8s.io/v1beta1"), valid: ALL },
  { name: "minimal v1alpha1 config", rule: DECODE_KIND, config: one({}, "kubelet.config.k8s.io/v1alpha1"), valid: ALL },
  {
    name: "kind missing",
    rule: DECODE_KIND,
    config: J({ apiVersion: "kubelet.config.k8s.io/v1", providers: [PROVIDER] }),
    valid: NONE,
    expect: "Kind' is missing",
  },
  {
    name: "kind KubeletConfiguration",
    rule: DECODE_KIND,
    config: J({ apiVersion: "kubelet.config.k8s.io/v1", kind: "KubeletConfiguration", providers: [PROVIDER] }),
    valid: NONE,
    expect: "expected CredentialProviderConfig",
  },
  {
    name: "config apiVersion v2",
    rule: DECODE_KIND,
    config: one({}, "kubelet.config.k8s.io/v2"),
    valid: NONE,
    expect: "no kind CredentialProviderConfig is registered",
  },
  {
    name: "config apiVersion missing",
    rule: DECODE_KIND,
    config: J({ kind: "CredentialProviderConfig", providers: [PROVIDER] }),
    valid: NONE,
    expect: "no kind",
  },
  {
    name: "config apiVersion of the request API's group",
    rule: DECODE_KIND,
    config: one({}, "credentialprovider.kubelet.k8s.io/v1"),
    valid: NONE,
    expect: "no kind",
  },
  {
    name: "no providers (empty list)",
    rule: VALIDATE,
    config: doc([]),
    valid: NONE,
    expect: "at least 1 item in plugins is required",
  },
  {
    name: "no providers field",
    rule: VALIDATE,
    config: J({ apiVersion: "kubelet.config.k8s.io/v1", kind: "CredentialProviderConfig" }),
    valid: NONE,
    expect: "at least 1 item",
  },
  {
    name: "providers: null",
    rule: VALIDATE,
    config: "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders: null\n",
    valid: NONE,
    expect: "at least 1 item",
  },
  {
    name: "unknown top-level field metadata",
    rule: DECODE,
    config: doc([PROVIDER], undefined, { metadata: { name: "x" } }),
    valid: NONE,
    expect: 'unknown field "metadata"',
  },
  {
    name: "YAML syntax error",
    rule: DECODE,
    config: "apiVersion: kubelet.config.k8s.io/v1\nkind: [unclosed\n",
    valid: NONE,
  },
  {
    name: "the same field twice",
    rule: DECODE,
    config:
      "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nkind: CredentialProviderConfig\nproviders: []\n",
    valid: NONE,
  },
  { name: "a list, not an object", rule: DECODE, config: "- a\n- b\n", valid: NONE },
  {
    name: "providers is a map",
    rule: DECODE,
    config: J({
      apiVersion: "kubelet.config.k8s.io/v1",
      kind: "CredentialProviderConfig",
      providers: { ecr: PROVIDER },
    }),
    valid: NONE,
    expect: "into a list",
  },
  {
    name: "wrong-case field Providers",
    rule: DECODE,
    config: J({ apiVersion: "kubelet.config.k8s.io/v1", kind: "CredentialProviderConfig", Providers: [PROVIDER] }),
    valid: NONE,
    expect: 'unknown field "Providers"',
  },
);

// B. Names: a file in the bin directory.
for (const [name, valid, expect] of [
  ["ecr", true],
  ["ecr-credential-provider", true],
  ["a.b", true],
  ["x_y", true],
  ["UPPER", true],
  ["...", true],
  ["a/b", false, "cannot contain '/'"],
  ["a b", false, "cannot contain spaces"],
  [".", false, "cannot be '.'"],
  ["..", false, "cannot be '..'"],
] as const) {
  add({
    name: `name ${JSON.stringify(name)}`,
    rule: VALIDATE,
    config: one({ name }),
    valid: valid ? ALL : NONE,
    ...(expect ? { expect } : {}),
  });
}
add(
  { name: "name empty", rule: REGISTER, config: one({ name: "" }), valid: NONE, expect: "name: Required value" },
  { name: "name missing", rule: REGISTER, config: without("name"), valid: NONE, expect: "name: Required value" },
  { name: "name not a string", rule: DECODE, config: one({ name: 5 }), valid: NONE, expect: "into a string" },
  {
    name: "the same name twice in one file",
    rule: VALIDATE,
    config: doc([PROVIDER, PROVIDER]),
    valid: NONE,
    expect: 'Duplicate value: "ecr"',
  },
);

// C. The request API version the provider speaks.
for (const [apiVersion, valid] of [
  ["credentialprovider.kubelet.k8s.io/v1", true],
  ["credentialprovider.kubelet.k8s.io/v1beta1", true],
  ["credentialprovider.kubelet.k8s.io/v1alpha1", true],
  ["credentialprovider.kubelet.k8s.io/v2", false],
  ["v1", false],
  ["kubelet.config.k8s.io/v1", false],
] as const) {
  add({
    name: `provider apiVersion ${apiVersion}`,
    rule: VALIDATE,
    config: one({ apiVersion }),
    valid: valid ? ALL : NONE,
    ...(valid ? {} : { expect: "apiVersion: Unsupported value" }),
  });
}
add({
  name: "provider apiVersion missing",
  rule: VALIDATE,
  config: without("apiVersion"),
  valid: NONE,
  expect: "apiVersion: Required value",
});

// D. matchImages: each must parse as "https://"+pattern.
for (const [m, valid, expect] of [
  ["*.dkr.ecr.*.amazonaws.com", true],
  ["*.dkr.ecr-fips.*.amazonaws.eu", true],
  ["*.dkr-ecr.*.on.aws", true],
  ["public.ecr.aws", true],
  ["ecr-public.aws.com", true],
  ["registry.local:5000", true],
  ["registry.local:5000/team/app", true],
  ["[::1]:5000/x", true],
  ["docker.io", true],
  ["*", true],
  ["host?query=1", true],
  ["user:pass@host.example.com", true],
  ["x[.dkr.ecr.*.amazonaws.com", true],
  ["bad host", false, 'invalid character " " in host name'],
  ["host:abc", false, "invalid port"],
  ["*.example.com:*", false, "invalid port"],
  ["[::1", false, "missing ']' in host"],
  ["%zz.example.com", false, "invalid URL escape"],
  ["example.com/%zz", false, "invalid URL escape"],
  ["tab\there.com", false, "invalid"],
] as const) {
  add({
    name: `matchImages ${JSON.stringify(m)}`,
    rule: MATCH,
    config: one({ matchImages: [m] }),
    valid: valid ? ALL : NONE,
    ...(expect ? { expect } : {}),
  });
}
add(
  {
    name: "matchImages empty",
    rule: VALIDATE,
    config: one({ matchImages: [] }),
    valid: NONE,
    expect: "at least 1 item in matchImages is required",
  },
  {
    name: "matchImages missing",
    rule: VALIDATE,
    config: without("matchImages"),
    valid: NONE,
    expect: "at least 1 item in matchImages",
  },
  {
    name: "matchImages a string",
    rule: DECODE,
    config: one({ matchImages: "*.dkr.ecr.*.amazonaws.com" }),
    valid: NONE,
    expect: "into a list of strings",
  },
  {
    name: "matchImages holding a number",
    rule: DECODE,
    config: one({ matchImages: [443] }),
    valid: NONE,
    expect: "into a string",
  },
  {
    name: "matchImages with one bad of two",
    rule: MATCH,
    config: one({ matchImages: ["public.ecr.aws", "bad host"] }),
    valid: NONE,
    expect: "match image is invalid",
  },
);

// E. defaultCacheDuration: a Go duration, not negative.
for (const [d, valid, expect] of [
  ["12h", true],
  ["0", true],
  ["0s", true],
  ["-0s", true],
  ["1h30m", true],
  ["1.5h", true],
  ["500ms", true],
  ["+5m", true],
  ["1µs", true],
  ["-1s", false, "must be greater than or equal to 0"],
  ["12 hours", false, "time: unknown unit"],
  ["12", false, "time: missing unit"],
  ["1d", false, 'unknown unit "d"'],
  ["", false, "time: invalid duration"],
] as const) {
  add({
    name: `defaultCacheDuration ${JSON.stringify(d)}`,
    rule: DURATION,
    config: one({ defaultCacheDuration: d }),
    valid: valid ? ALL : NONE,
    ...(expect ? { expect } : {}),
  });
}
add(
  {
    name: "defaultCacheDuration missing",
    rule: VALIDATE,
    config: without("defaultCacheDuration"),
    valid: NONE,
    expect: "defaultCacheDuration: Required value",
  },
  {
    name: "defaultCacheDuration null",
    rule: VALIDATE,
    config: one({ defaultCacheDuration: null }),
    valid: NONE,
    expect: "defaultCacheDuration: Required value",
  },
  {
    name: "defaultCacheDuration a number",
    rule: DURATION,
    config: one({ defaultCacheDuration: 0 }),
    valid: NONE,
    expect: "cannot decode a JSON number",
  },
);

// F. args and env: types only (the kubelet does not look inside).
add(
  { name: "args a list of strings", rule: DECODE, config: one({ args: ["get-credentials", "--v=2"] }), valid: ALL },
  {
    name: "args a string",
    rule: DECODE,
    config: one({ args: "get-credentials" }),
    valid: NONE,
    expect: "into a list of strings",
  },
  {
    name: "args holding a number",
    rule: DECODE,
    config: one({ args: ["-v", 2] }),
    valid: NONE,
    expect: "into a string",
  },
  {
    name: "env name and value",
    rule: DECODE,
    config: one({ env: [{ name: "AWS_REGION", value: "us-west-2" }] }),
    valid: ALL,
  },
  { name: "env value left out (empty)", rule: DECODE, config: one({ env: [{ name: "AWS_PROFILE" }] }), valid: ALL },
  { name: "env name left out (not checked)", rule: VALIDATE, config: one({ env: [{ value: "x" }] }), valid: ALL },
  {
    name: "env valueFrom (not an ExecEnvVar field)",
    rule: DECODE,
    config: one({ env: [{ name: "A", valueFrom: {} }] }),
    valid: NONE,
    expect: 'unknown field "valueFrom"',
  },
  {
    name: "env a map",
    rule: DECODE,
    config: one({ env: { AWS_REGION: "us-west-2" } }),
    valid: NONE,
    expect: "into a list",
  },
  {
    name: "env value a number",
    rule: DECODE,
    config: one({ env: [{ name: "PORT", value: 8080 }] }),
    valid: NONE,
    expect: "into a string",
  },
);

// G. Fields a CredentialProvider does not have.
for (const field of ["cacheDurationTypo", "MatchImages", "tokenattributes", "labels"]) {
  add({
    name: `unknown provider field ${field}`,
    rule: DECODE,
    config: one({ [field]: "x" }),
    valid: NONE,
    expect: `unknown field "${field}"`,
  });
}

// H. tokenAttributes by config apiVersion, release and gate.
const TA = { serviceAccountTokenAudience: "sts.amazonaws.com", requireServiceAccount: false };
const TA134 = { ...TA, cacheType: "ServiceAccount" };
const GATE_ON = "KubeletServiceAccountTokenForCredentialProviders=true";
const GATE_OFF = "KubeletServiceAccountTokenForCredentialProviders=false";
add(
  {
    name: "v1 tokenAttributes with cacheType (the 1.34+ form)",
    rule: TYPES_CACHE,
    config: one({ tokenAttributes: TA134 }),
    valid: FROM_134,
    expect: ['unknown field "cacheType"', undefined, undefined],
  },
  {
    name: "v1 tokenAttributes with cacheType, gate on in 1.33",
    rule: TYPES_CACHE,
    config: one({ tokenAttributes: TA134 }),
    featureGates: GATE_ON,
    valid: FROM_134,
    expect: ['unknown field "cacheType"', undefined, undefined],
  },
  {
    name: "v1 tokenAttributes without cacheType, gates as released",
    rule: GATE,
    config: one({ tokenAttributes: TA }),
    valid: NONE,
    expect: ["feature gate is disabled", "cacheType: Required value", "cacheType: Required value"],
  },
  {
    name: "v1 tokenAttributes without cacheType, gate on (the 1.33 form)",
    rule: TYPES_CACHE,
    config: one({ tokenAttributes: TA }),
    featureGates: GATE_ON,
    valid: ONLY_133,
    expect: [undefined, "cacheType: Required value", "cacheType: Required value"],
  },
  {
    name: "v1 tokenAttributes with cacheType, gate off",
    rule: GATE,
    config: one({ tokenAttributes: TA134 }),
    featureGates: GATE_OFF,
    valid: NONE,
    expect: ['unknown field "cacheType"', "feature gate is disabled", "feature gate is disabled"],
  },
  {
    name: "v1beta1 config with tokenAttributes",
    rule: TYPES_BETA,
    config: one({ tokenAttributes: TA134 }, "kubelet.config.k8s.io/v1beta1"),
    featureGates: GATE_ON,
    valid: NONE,
    expect: 'unknown field "tokenAttributes"',
  },
  {
    name: "v1beta1 config with 1.33-form tokenAttributes",
    rule: TYPES_BETA,
    config: one({ tokenAttributes: TA }, "kubelet.config.k8s.io/v1beta1"),
    featureGates: GATE_ON,
    valid: NONE,
    expect: "has no tokenAttributes",
  },
  {
    name: "v1alpha1 config with tokenAttributes",
    rule: TYPES_BETA,
    config: one({ tokenAttributes: TA134 }, "kubelet.config.k8s.io/v1alpha1"),
    featureGates: GATE_ON,
    valid: NONE,
    expect: "has no tokenAttributes",
  },
  {
    name: "tokenAttributes with a v1beta1 request API",
    rule: TYPES_V1,
    config: one({ apiVersion: "credentialprovider.kubelet.k8s.io/v1beta1", tokenAttributes: TA134 }),
    valid: NONE,
    expect: [
      undefined,
      "only supported for credentialprovider.kubelet.k8s.io/v1",
      "only supported for credentialprovider.kubelet.k8s.io/v1",
    ],
  },
  { name: "tokenAttributes: null", rule: DECODE, config: one({ tokenAttributes: null }), valid: ALL },
  {
    name: "tokenAttributes a string",
    rule: DECODE,
    config: one({ tokenAttributes: "sts.amazonaws.com" }),
    valid: NONE,
    expect: "into ServiceAccountTokenAttributes",
  },
);
for (const [cacheType, valid, expect] of [
  ["Token", true],
  ["ServiceAccount", true],
  ["", false, "cacheType: Required value"],
  ["token", false, 'cacheType: Unsupported value: "token"'],
  ["Pod", false, 'cacheType: Unsupported value: "Pod"'],
] as const) {
  add({
    name: `cacheType ${JSON.stringify(cacheType)}`,
    rule: VALIDATE,
    config: one({ tokenAttributes: { ...TA, cacheType } }),
    valid: valid ? FROM_134 : NONE,
    expect: ['unknown field "cacheType"', expect, expect],
  });
}
add({
  name: "cacheType a number",
  rule: DECODE,
  config: one({ tokenAttributes: { ...TA, cacheType: 1 } }),
  valid: NONE,
  expect: ['unknown field "cacheType"', "into a string", "into a string"],
});

// I. The rules inside tokenAttributes, each in the 1.34+ form (1.33 refuses cacheType) and in the
// 1.33 form with the gate on (1.34 on require cacheType).
type Rule = { name: string; rule: string; ta: object; ok: boolean; expect?: string };
const tokenRules: Rule[] = [
  {
    name: "audience empty",
    rule: VALIDATE,
    ta: { serviceAccountTokenAudience: "" },
    ok: false,
    expect: "serviceAccountTokenAudience: Required value",
  },
  { name: "audience a blank (not trimmed)", rule: VALIDATE, ta: { serviceAccountTokenAudience: " " }, ok: true },
  {
    name: "audience missing",
    rule: VALIDATE,
    ta: { serviceAccountTokenAudience: undefined },
    ok: false,
    expect: "serviceAccountTokenAudience: Required value",
  },
  {
    name: "audience a number",
    rule: DECODE,
    ta: { serviceAccountTokenAudience: 5 },
    ok: false,
    expect: "into a string",
  },
  {
    name: "requireServiceAccount missing",
    rule: VALIDATE,
    ta: { requireServiceAccount: undefined },
    ok: false,
    expect: "requireServiceAccount: Required value",
  },
  { name: "requireServiceAccount true", rule: VALIDATE, ta: { requireServiceAccount: true }, ok: true },
  {
    name: "requireServiceAccount a string",
    rule: DECODE,
    ta: { requireServiceAccount: "true" },
    ok: false,
    expect: "into a bool",
  },
  {
    name: "requireServiceAccount false with required keys",
    rule: VALIDATE,
    ta: { requireServiceAccount: false, requiredServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"] },
    ok: false,
    expect: "requireServiceAccount cannot be false",
  },
  {
    name: "requireServiceAccount true with required keys",
    rule: VALIDATE,
    ta: { requireServiceAccount: true, requiredServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"] },
    ok: true,
  },
  {
    name: "requireServiceAccount false with optional keys",
    rule: VALIDATE,
    ta: { optionalServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"] },
    ok: true,
  },
  {
    name: "key eks.amazonaws.com/ecr-role-arn",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"] },
    ok: true,
  },
  {
    name: "key in upper case EKS.Amazonaws.com/ECR-Role-ARN",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["EKS.Amazonaws.com/ECR-Role-ARN"] },
    ok: true,
  },
  {
    name: "key without prefix, with underscores",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["Role_ARN.v2"] },
    ok: true,
  },
  {
    name: "key with two slashes",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["a/b/c"] },
    ok: false,
    expect: "optional prefix",
  },
  {
    name: "key with an empty prefix",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["/role"] },
    ok: false,
    expect: "prefix part must be non-empty",
  },
  {
    name: "key with an empty name",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["example.com/"] },
    ok: false,
    expect: "name part must be non-empty",
  },
  {
    name: "key with a space",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["role arn"] },
    ok: false,
    expect: "name part must consist of",
  },
  {
    name: "key starting with a dash",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["-role"] },
    ok: false,
    expect: "name part must consist of",
  },
  {
    name: "key name of 64 characters",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: [`example.com/${"r".repeat(64)}`] },
    ok: false,
    expect: "no more than 63 characters",
  },
  {
    name: "key name of 63 characters",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: [`example.com/${"r".repeat(63)}`] },
    ok: true,
  },
  {
    name: "key prefix of 254 characters",
    rule: KEYS,
    ta: {
      optionalServiceAccountAnnotationKeys: [
        `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.${"d".repeat(60)}.eeeeeeeeeeee/role`,
      ],
    },
    ok: false,
    expect: "prefix part",
  },
  {
    name: "key prefix with an underscore",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["my_co.example/role"] },
    ok: false,
    expect: "prefix part",
  },
  {
    name: "key empty",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: [""] },
    ok: false,
    expect: "name part must be non-empty",
  },
  {
    name: "a required key twice",
    rule: KEYS,
    ta: { requireServiceAccount: true, requiredServiceAccountAnnotationKeys: ["a.io/x", "a.io/x"] },
    ok: false,
    expect: 'Duplicate value: "a.io/x"',
  },
  {
    name: "an optional key twice",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["a.io/x", "a.io/x"] },
    ok: false,
    expect: 'Duplicate value: "a.io/x"',
  },
  {
    name: "keys differing only in case (the duplicate check is exact)",
    rule: KEYS,
    ta: { optionalServiceAccountAnnotationKeys: ["A.io/x", "a.io/x"] },
    ok: true,
  },
  {
    name: "a key both required and optional",
    rule: VALIDATE,
    ta: {
      requireServiceAccount: true,
      requiredServiceAccountAnnotationKeys: ["a.io/x"],
      optionalServiceAccountAnnotationKeys: ["a.io/x"],
    },
    ok: false,
    expect: "cannot be both required and optional",
  },
  {
    name: "keys a string, not a list",
    rule: DECODE,
    ta: { optionalServiceAccountAnnotationKeys: "a.io/x" },
    ok: false,
    expect: "into a list of strings",
  },
  {
    name: "an unknown tokenAttributes field",
    rule: DECODE,
    ta: { audience: "sts.amazonaws.com" },
    ok: false,
    expect: 'unknown field "audience"',
  },
];
for (const r of tokenRules) {
  add(
    {
      name: `tokenAttributes, 1.34+ form: ${r.name}`,
      rule: r.rule,
      config: one({ tokenAttributes: { ...TA134, ...r.ta } }),
      valid: r.ok ? FROM_134 : NONE,
      expect: ['unknown field "cacheType"', r.expect, r.expect],
    },
    {
      name: `tokenAttributes, 1.33 form, gate on: ${r.name}`,
      rule: r.rule,
      config: one({ tokenAttributes: { ...TA, ...r.ta } }),
      featureGates: GATE_ON,
      valid: r.ok ? ONLY_133 : NONE,
      expect: [r.expect, "cacheType: Required value", "cacheType: Required value"],
    },
  );
}
add({
  name: "requireServiceAccount: yes (YAML 1.1 boolean), 1.34+ form",
  rule: YAML11,
  config: `apiVersion: kubelet.config.k8s.io/v1
kind: CredentialProviderConfig
providers:
  - name: ecr
    apiVersion: credentialprovider.kubelet.k8s.io/v1
    defaultCacheDuration: 12h
    matchImages: ["*.dkr.ecr.*.amazonaws.com"]
    tokenAttributes:
      serviceAccountTokenAudience: sts.amazonaws.com
      cacheType: Token
      requireServiceAccount: yes
`,
  valid: FROM_134,
  expect: ['unknown field "cacheType"', undefined, undefined],
});

// J. A directory of files (1.34 on; 1.33 reads one file, a directory is an error there).
const DIR = `${READ_DIR}; ${READ_133}`;
const second = doc([{ ...PROVIDER, name: "other", matchImages: ["quay.io"] }]);
add(
  {
    name: "a directory with one file",
    rule: DIR,
    config: { "10-ecr.yaml": one({}) },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
  {
    name: "a directory with two providers in two files",
    rule: DIR,
    config: { "10-ecr.yaml": one({}), "20-other.json": second },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
  {
    name: "a directory, the same name in two files",
    rule: DIR,
    config: { "10-a.yaml": one({}), "20-b.yml": one({}) },
    valid: NONE,
    expect: ["reads one file", "duplicate provider name", "duplicate provider name"],
  },
  {
    name: "a directory without config files",
    rule: DIR,
    config: { README: "not a config", "notes.txt": "x" },
    valid: NONE,
    expect: ["reads one file", "no configuration files found", "no configuration files found"],
  },
  {
    name: "a directory: other files are ignored",
    rule: DIR,
    config: { "10-ecr.yaml": one({}), "99-backup.yaml~": "garbage: [", "old.conf": "x" },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
  {
    name: "a directory: a subdirectory named like a config is skipped",
    rule: DIR,
    config: { "10-ecr.yaml": one({}), "20-dir.yaml/": null },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
  {
    name: "a directory: one file without providers, one with",
    rule: DIR,
    config: { "10-empty.yaml": doc([]), "20-ecr.yaml": one({}) },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
  {
    name: "a directory: no file with providers",
    rule: DIR,
    config: { "10-empty.yaml": doc([]), "20-empty.json": doc([]) },
    valid: NONE,
    expect: ["reads one file", "at least 1 item", "at least 1 item"],
  },
  {
    name: "a directory: one bad file stops all",
    rule: DIR,
    config: { "10-ecr.yaml": one({}), "20-bad.yaml": one({ name: "a/b" }) },
    valid: NONE,
    expect: ["reads one file", "cannot contain '/'", "cannot contain '/'"],
  },
  {
    name: "a directory: a v1beta1 file beside a v1 one",
    rule: DIR,
    config: {
      "10-ecr.yaml": one({}),
      "20-other.yaml": doc([{ ...PROVIDER, name: "other" }], "kubelet.config.k8s.io/v1beta1"),
    },
    valid: FROM_134,
    expect: ["reads one file", undefined, undefined],
  },
);

let root: string;
test.before(() => {
  root = tempDir("corpus");
});
test.after(() => removeDir(root));

test(`the corpus has at least 150 configs (${corpus.length}), each named once`, () => {
  assert.ok(corpus.length >= 150, `${corpus.length}`);
  assert.is(new Set(corpus.map((e) => e.name)).size, corpus.length);
});

corpus.forEach((entry, n) => {
  test(`${entry.name} [${entry.valid.map((v, i) => `${KUBELET_VERSIONS[i]} ${v ? "starts" : "refuses"}`).join(", ")}] (${entry.rule})`, () => {
    let path = join(root, `c${n}.yaml`);
    if (typeof entry.config === "string") writeFileSync(path, entry.config);
    else {
      path = join(root, `d${n}`);
      mkdirSync(path);
      for (const [name, text] of Object.entries(entry.config)) {
        if (text === null) mkdirSync(join(path, name));
        else writeFileSync(join(path, name), text);
      }
    }
    KUBELET_VERSIONS.forEach((version, i) => {
      const rules = kubeletRules(version, entry.featureGates);
      if (!rules.ok) throw new Error(rules.error);
      const { errors } = validateConfig(path, parseConfigYaml, rules.value);
      const valid = entry.valid[i] as boolean;
      assert.is(errors.length === 0, valid, `kubelet ${version}: ${errors.join(" | ") || "no error"}`);
      const expect = typeof entry.expect === "string" ? entry.expect : entry.expect?.[i];
      if (!valid && expect !== undefined)
        assert.ok(
          errors.some((e) => e.includes(expect)),
          `kubelet ${version}: no error says ${JSON.stringify(expect)}: ${errors.join(" | ")}`,
        );
    });
  });
});

test.run();
