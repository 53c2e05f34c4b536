// The anchor's registry regex and region grid (cloud-provider-aws cmd/ecr-credential-provider
// main_test.go: TestRegistryPatternMatch, Test_parseRegionFromECRPrivateHost,
// Test_parseHostFromImageReference), and the host taken from the image.
import { ANCHOR_NON_MATCHES } from "../helpers/ecr-hosts.ts";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { classifyHost } from "../../credential-provider/ecr-registry.ts";
import { parseImage } from "../../credential-provider/image.ts";

const test = suite("credential-provider: registry hosts");

const grid: [string, string, boolean, boolean][] = [
  ["123456789012.dkr.ecr.us-west-2.amazonaws.com", "us-west-2", false, false],
  ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1", false, false],
  ["123456789012.dkr.ecr.us-gov-east-1.amazonaws.com", "us-gov-east-1", false, false],
  ["123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1", false, false],
  ["123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1", false, false],
  ["123456789012.dkr-ecr.us-west-2.on.aws", "us-west-2", false, true],
  ["123456789012.dkr-ecr-fips.us-west-2.on.aws", "us-west-2", true, true],
  ["123456789012.dkr.ecr-fips.us-west-2.amazonaws.com", "us-west-2", true, false],
  ["123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", "cn-north-1", false, true],
  ["123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1", false, false],
  ["123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1", false, false],
  ["123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1", false, false],
];
for (const [host, region, fips, dualStack] of grid) {
  test(`region grid: ${host} -> ${region}${fips ? " FIPS" : ""}${dualStack ? " dual-stack" : ""}`, () => {
    const r = classifyHost(host);
    assert.equal(r, { kind: "private", host, accountId: "123456789012", region, fips, dualStack });
  });
}

test("regex non-matches (anchor's list)", () => {
  for (const host of ANCHOR_NON_MATCHES) {
    assert.is(classifyHost(host).kind, "other", host);
  }
});

test("ECR Public hosts", () => {
  assert.equal(classifyHost("public.ecr.aws"), {
    kind: "public",
    host: "public.ecr.aws",
    region: "us-east-1",
    dualStack: false,
  });
  assert.equal(
    classifyHost("ecr-public.aws.com"),
    { kind: "public", host: "ecr-public.aws.com", region: "us-east-1", dualStack: true },
    "the dual-stack ECR Public host",
  );
  assert.is(classifyHost("public.ecr.aws.evil.com").kind, "other");
});

test("image -> registry (auth key) and hostname (port dropped), tag and digest ignored", () => {
  const p = (s: string) => {
    const r = parseImage(s);
    if (!r.ok) throw new Error(r.error);
    return r.value;
  };
  assert.equal(p("123456789012.dkr.ecr.us-west-2.amazonaws.com/public.ecr.aws/foo:latest"), {
    hostname: "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    registry: "123456789012.dkr.ecr.us-west-2.amazonaws.com",
    repository: "public.ecr.aws/foo",
  });
  assert.equal(p("registry.local:5000/a/b@sha256:abc"), {
    hostname: "registry.local",
    registry: "registry.local:5000",
    repository: "a/b",
  });
  assert.equal(p("[::1]:5000/a"), { hostname: "::1", registry: "[::1]:5000", repository: "a" });
  assert.equal(p("foobar"), { hostname: "foobar", registry: "foobar", repository: "" });
  const e = (s: string) => {
    const r = parseImage(s);
    return r.ok ? "" : r.error;
  };
  assert.is(e(""), "image in plugin request was empty");
  assert.match(e("a b/c"), /^error parsing image reference a b\/c: /);
  assert.match(e("host:port/c"), /invalid port ":port" after host/);
});

test.run();
