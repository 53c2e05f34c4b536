// validate-config's rules (kubelet validateCredentialProviderConfig), with JSON documents.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  kubeletRules,
  matchProviders,
  qualifiedNameErrors,
  validateConfig,
  type KubeletRules,
  type ParseDoc,
} from "../../credential-provider/kubelet-config.ts";
import { errorMessage } from "../../shared/json.ts";

const test = suite("credential-provider: kubelet CredentialProviderConfig rules");
const parse: ParseDoc = (text) => {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, error: errorMessage(e) };
  }
};
let tmp: string;
test.before(() => {
  tmp = mkdtempSync(join(tmpdir(), "berth-kcfg-"));
});
test.after(() => rmSync(tmp, { recursive: true, force: true }));

const provider = (o: Record<string, unknown> = {}) => ({
  name: "ecr",
  apiVersion: "credentialprovider.kubelet.k8s.io/v1",
  matchImages: ["*.dkr.ecr.*.amazonaws.com"],
  defaultCacheDuration: "12h",
  ...o,
});
const NEWEST: KubeletRules = { version: "1.35", tokenGate: true };
function check(providers: unknown[], rules: KubeletRules = NEWEST): string[] {
  const f = join(tmp, `c${Math.random()}.json`);
  writeFileSync(
    f,
    JSON.stringify({ apiVersion: "kubelet.config.k8s.io/v1", kind: "CredentialProviderConfig", providers }),
  );
  return validateConfig(f, parse, rules).errors;
}

test("a valid provider with service-account tokenAttributes (k8s 1.34)", () => {
  const errors = check([
    provider({
      tokenAttributes: {
        serviceAccountTokenAudience: "sts.amazonaws.com",
        cacheType: "ServiceAccount",
        requireServiceAccount: false,
        optionalServiceAccountAnnotationKeys: ["eks.amazonaws.com/ecr-role-arn"],
      },
    }),
  ]);
  assert.equal(errors, []);
});

test("at least one provider", () => {
  assert.match(check([]).join("\n"), "at least 1 item in plugins is required");
});

test("names: no '/', no spaces, not . or .., unique", () => {
  const e = check([
    provider({ name: "a b" }),
    provider({ name: ".." }),
    provider({ name: "x" }),
    provider({ name: "x" }),
  ]).join("\n");
  assert.match(e, "cannot contain spaces");
  assert.match(e, "cannot be '..'");
  assert.match(e, 'Duplicate value: "x"');
});

test("tokenAttributes: audience, requireServiceAccount and cacheType required; keys qualified, unique, not both", () => {
  const e = check([
    provider({
      tokenAttributes: {
        requiredServiceAccountAnnotationKeys: ["a/b", "a/b", "Not Valid"],
        optionalServiceAccountAnnotationKeys: ["a/b"],
        cacheType: "Pod",
      },
    }),
  ]).join("\n");
  for (const s of [
    "serviceAccountTokenAudience: Required value",
    "requireServiceAccount: Required value",
    'cacheType: Unsupported value: "Pod"',
    'Duplicate value: "a/b"',
    '"Not Valid": name part must consist of alphanumeric characters',
    "cannot be both required and optional",
  ]) {
    assert.match(e, s);
  }
});

test("defaultCacheDuration: required, a Go duration, not negative; 0 is fine", () => {
  assert.equal(check([provider({ defaultCacheDuration: "0" })]), []);
  assert.match(check([provider({ defaultCacheDuration: undefined })]).join(), "defaultCacheDuration: Required value");
  assert.match(check([provider({ defaultCacheDuration: "12 hours" })]).join(), "time: unknown unit");
});

test("IsQualifiedName, as apimachinery has it, on the lower-cased key", () => {
  assert.equal(qualifiedNameErrors("eks.amazonaws.com/ecr-role-arn"), []);
  assert.equal(qualifiedNameErrors("EKS.Amazonaws.com/ECR-Role-ARN".toLowerCase()), []);
  assert.equal(qualifiedNameErrors("plain_name.x"), []);
  assert.ok(qualifiedNameErrors("EKS.Amazonaws.com/x").length > 0, "the prefix must be lower case before lowering");
  assert.ok(qualifiedNameErrors("a/b/c").length > 0);
  assert.ok(qualifiedNameErrors("/x").length > 0);
  assert.ok(qualifiedNameErrors("x/").length > 0);
  assert.ok(qualifiedNameErrors(`${"a".repeat(64)}`).length > 0);
  assert.equal(qualifiedNameErrors(`${"a".repeat(63)}`), []);
  assert.ok(qualifiedNameErrors("-x").length > 0);
  assert.ok(qualifiedNameErrors("x_").length > 0);
});

test("kubeletRules: the release's gate default, --feature-gates overrides it, unknown versions refused", () => {
  assert.equal(kubeletRules(undefined, undefined), { ok: true, value: { version: "1.35", tokenGate: true } });
  assert.equal(kubeletRules("1.33", undefined), { ok: true, value: { version: "1.33", tokenGate: false } });
  assert.equal(kubeletRules("v1.33", "KubeletServiceAccountTokenForCredentialProviders=true"), {
    ok: true,
    value: { version: "1.33", tokenGate: true },
  });
  assert.equal(kubeletRules("1.34", "Other=true,KubeletServiceAccountTokenForCredentialProviders=false"), {
    ok: true,
    value: { version: "1.34", tokenGate: false },
  });
  assert.not.ok(kubeletRules("1.32", undefined).ok);
  assert.not.ok(kubeletRules("1.35", "Gate=maybe").ok);
});

test("matchProviders: every provider whose matchImages match, with the pattern", () => {
  const f = join(tmp, "m.json");
  writeFileSync(
    f,
    JSON.stringify({
      apiVersion: "kubelet.config.k8s.io/v1",
      kind: "CredentialProviderConfig",
      providers: [
        provider(),
        provider({ name: "all-aws", matchImages: ["*.*.*.*.amazonaws.com", "x[.dkr.ecr.*.amazonaws.com"] }),
      ],
    }),
  );
  const r = validateConfig(f, parse, NEWEST);
  const m = matchProviders(r.providers, "123456789012.dkr.ecr.us-west-2.amazonaws.com/app");
  assert.equal(
    m.map((x) => [x.provider.name, x.matchedBy]),
    [
      ["ecr", ["*.dkr.ecr.*.amazonaws.com"]],
      ["all-aws", ["*.*.*.*.amazonaws.com"]],
    ],
  );
  assert.equal(m[1]?.problems, ["x[.dkr.ecr.*.amazonaws.com: syntax error in pattern"]);
});

test.run();
