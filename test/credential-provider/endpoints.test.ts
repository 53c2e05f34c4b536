// Which AWS host each call would reach, for every partition x {plain, FIPS, dual-stack,
// FIPS+dual-stack} x {node, token} x {ECR, ECR Public}: the built binary runs with HTTPS_PROXY
// set to a loopback proxy that records the target of each CONNECT and refuses it, so nothing
// leaves the machine and no DNS is needed.
//
// The expected hosts are the AWS SDK's endpoint rules, read off the rule sets the installed
// clients carry (aws-sdk-js-v3 clients/client-ecr, client-ecr-public and client-sts,
// src/endpoint/bdd.ts; @aws-sdk/client-ecr 3.1169.0, client-ecr-public 3.1108.0, client-sts
// 3.1177.0) with each partition's dnsSuffix and dualStackDnsSuffix from the SDK's partitions table
// (@aws-sdk/core 3.981.2, util-endpoints/lib/aws/partitions.js):
// - ECR: api.ecr.{Region}.{dnsSuffix}; FIPS api.ecr-fips.{Region}.{dnsSuffix}; dual-stack
//   ecr.{Region}.{dualStackDnsSuffix}; both ecr-fips.{Region}.{dualStackDnsSuffix}.
// - ECR Public: api.ecr-public.{Region}.{dnsSuffix}; FIPS api.ecr-public-fips.{Region}.{dnsSuffix};
//   dual-stack in the aws partition ecr-public.{Region}.api.aws; both
//   api.ecr-public-fips.{Region}.{dualStackDnsSuffix}.
// - STS (regional): sts.{Region}.{dnsSuffix}; FIPS sts-fips.{Region}.{dnsSuffix}, except aws-us-gov:
//   sts.{Region}.amazonaws.com; dual-stack sts.{Region}.{dualStackDnsSuffix}; both
//   sts-fips.{Region}.{dualStackDnsSuffix}.
// A private registry's host picks the flavour (`-fips`, `dkr-ecr` / on.aws); ECR Public has two
// hosts (public.ecr.aws, and ecr-public.aws.com, dual-stack), lives in us-east-1 whatever the
// node's partition, and is FIPS when the node says so (AWS_USE_FIPS_ENDPOINT, the SDK's own
// setting). In token mode STS is asked first, in the registry's region (for ECR Public the node's
// region, as the anchor does), with the same FIPS/dual-stack choice as the registry call.
import * as assert from "uvu/assert";
import { NODE_ACCESS_KEY, NODE_SECRET_KEY } from "../helpers/aws-endpoint.ts";
import { startRefusingProxy, type LoopbackProxy } from "../helpers/proxy.ts";
import { endpointSuite, request, run, SA_TOKEN } from "./helpers.ts";

const s = endpointSuite("credential-provider: the AWS host of every call, per partition and flavour");
const { test } = s;

type Flavour = "plain" | "FIPS" | "dual-stack" | "FIPS+dual-stack";
type Row = { partition: string; region: string; flavour: Flavour; registry: string; api: string; sts: string };

const A = "123456789012";
// biome-ignore format: a table, one row per line
const PRIVATE: Row[] = [
  { partition: "aws", region: "us-west-2", flavour: "plain", registry: `${A}.dkr.ecr.us-west-2.amazonaws.com`, api: "api.ecr.us-west-2.amazonaws.com", sts: "sts.us-west-2.amazonaws.com" },
  { partition: "aws", region: "us-west-2", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.us-west-2.amazonaws.com`, api: "api.ecr-fips.us-west-2.amazonaws.com", sts: "sts-fips.us-west-2.amazonaws.com" },
  { partition: "aws", region: "us-west-2", flavour: "dual-stack", registry: `${A}.dkr-ecr.us-west-2.on.aws`, api: "ecr.us-west-2.api.aws", sts: "sts.us-west-2.api.aws" },
  { partition: "aws", region: "us-west-2", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.us-west-2.on.aws`, api: "ecr-fips.us-west-2.api.aws", sts: "sts-fips.us-west-2.api.aws" },
  { partition: "aws-us-gov", region: "us-gov-west-1", flavour: "plain", registry: `${A}.dkr.ecr.us-gov-west-1.amazonaws.com`, api: "api.ecr.us-gov-west-1.amazonaws.com", sts: "sts.us-gov-west-1.amazonaws.com" },
  { partition: "aws-us-gov", region: "us-gov-west-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.us-gov-west-1.amazonaws.com`, api: "api.ecr-fips.us-gov-west-1.amazonaws.com", sts: "sts.us-gov-west-1.amazonaws.com" },
  { partition: "aws-us-gov", region: "us-gov-west-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.us-gov-west-1.on.aws`, api: "ecr.us-gov-west-1.api.aws", sts: "sts.us-gov-west-1.api.aws" },
  { partition: "aws-us-gov", region: "us-gov-west-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.us-gov-west-1.on.aws`, api: "ecr-fips.us-gov-west-1.api.aws", sts: "sts-fips.us-gov-west-1.api.aws" },
  { partition: "aws-cn", region: "cn-north-1", flavour: "plain", registry: `${A}.dkr.ecr.cn-north-1.amazonaws.com.cn`, api: "api.ecr.cn-north-1.amazonaws.com.cn", sts: "sts.cn-north-1.amazonaws.com.cn" },
  { partition: "aws-cn", region: "cn-north-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.cn-north-1.amazonaws.com.cn`, api: "api.ecr-fips.cn-north-1.amazonaws.com.cn", sts: "sts-fips.cn-north-1.amazonaws.com.cn" },
  { partition: "aws-cn", region: "cn-north-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn`, api: "ecr.cn-north-1.api.amazonwebservices.com.cn", sts: "sts.cn-north-1.api.amazonwebservices.com.cn" },
  { partition: "aws-cn", region: "cn-north-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.cn-north-1.on.amazonwebservices.com.cn`, api: "ecr-fips.cn-north-1.api.amazonwebservices.com.cn", sts: "sts-fips.cn-north-1.api.amazonwebservices.com.cn" },
  { partition: "aws-eusc", region: "eusc-de-east-1", flavour: "plain", registry: `${A}.dkr.ecr.eusc-de-east-1.amazonaws.eu`, api: "api.ecr.eusc-de-east-1.amazonaws.eu", sts: "sts.eusc-de-east-1.amazonaws.eu" },
  { partition: "aws-eusc", region: "eusc-de-east-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.eusc-de-east-1.amazonaws.eu`, api: "api.ecr-fips.eusc-de-east-1.amazonaws.eu", sts: "sts-fips.eusc-de-east-1.amazonaws.eu" },
  { partition: "aws-eusc", region: "eusc-de-east-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.eusc-de-east-1.amazonaws.eu`, api: "ecr.eusc-de-east-1.api.amazonwebservices.eu", sts: "sts.eusc-de-east-1.api.amazonwebservices.eu" },
  { partition: "aws-eusc", region: "eusc-de-east-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.eusc-de-east-1.amazonaws.eu`, api: "ecr-fips.eusc-de-east-1.api.amazonwebservices.eu", sts: "sts-fips.eusc-de-east-1.api.amazonwebservices.eu" },
  { partition: "aws-iso", region: "us-iso-east-1", flavour: "plain", registry: `${A}.dkr.ecr.us-iso-east-1.c2s.ic.gov`, api: "api.ecr.us-iso-east-1.c2s.ic.gov", sts: "sts.us-iso-east-1.c2s.ic.gov" },
  { partition: "aws-iso", region: "us-iso-east-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.us-iso-east-1.c2s.ic.gov`, api: "api.ecr-fips.us-iso-east-1.c2s.ic.gov", sts: "sts-fips.us-iso-east-1.c2s.ic.gov" },
  { partition: "aws-iso", region: "us-iso-east-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.us-iso-east-1.c2s.ic.gov`, api: "ecr.us-iso-east-1.api.aws.ic.gov", sts: "sts.us-iso-east-1.api.aws.ic.gov" },
  { partition: "aws-iso", region: "us-iso-east-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.us-iso-east-1.c2s.ic.gov`, api: "ecr-fips.us-iso-east-1.api.aws.ic.gov", sts: "sts-fips.us-iso-east-1.api.aws.ic.gov" },
  { partition: "aws-iso-b", region: "us-isob-east-1", flavour: "plain", registry: `${A}.dkr.ecr.us-isob-east-1.sc2s.sgov.gov`, api: "api.ecr.us-isob-east-1.sc2s.sgov.gov", sts: "sts.us-isob-east-1.sc2s.sgov.gov" },
  { partition: "aws-iso-b", region: "us-isob-east-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.us-isob-east-1.sc2s.sgov.gov`, api: "api.ecr-fips.us-isob-east-1.sc2s.sgov.gov", sts: "sts-fips.us-isob-east-1.sc2s.sgov.gov" },
  { partition: "aws-iso-b", region: "us-isob-east-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.us-isob-east-1.sc2s.sgov.gov`, api: "ecr.us-isob-east-1.api.aws.scloud", sts: "sts.us-isob-east-1.api.aws.scloud" },
  { partition: "aws-iso-b", region: "us-isob-east-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.us-isob-east-1.sc2s.sgov.gov`, api: "ecr-fips.us-isob-east-1.api.aws.scloud", sts: "sts-fips.us-isob-east-1.api.aws.scloud" },
  { partition: "aws-iso-e", region: "eu-isoe-west-1", flavour: "plain", registry: `${A}.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk`, api: "api.ecr.eu-isoe-west-1.cloud.adc-e.uk", sts: "sts.eu-isoe-west-1.cloud.adc-e.uk" },
  { partition: "aws-iso-e", region: "eu-isoe-west-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.eu-isoe-west-1.cloud.adc-e.uk`, api: "api.ecr-fips.eu-isoe-west-1.cloud.adc-e.uk", sts: "sts-fips.eu-isoe-west-1.cloud.adc-e.uk" },
  { partition: "aws-iso-e", region: "eu-isoe-west-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.eu-isoe-west-1.cloud.adc-e.uk`, api: "ecr.eu-isoe-west-1.api.cloud-aws.adc-e.uk", sts: "sts.eu-isoe-west-1.api.cloud-aws.adc-e.uk" },
  { partition: "aws-iso-e", region: "eu-isoe-west-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.eu-isoe-west-1.cloud.adc-e.uk`, api: "ecr-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk", sts: "sts-fips.eu-isoe-west-1.api.cloud-aws.adc-e.uk" },
  { partition: "aws-iso-f", region: "us-isof-south-1", flavour: "plain", registry: `${A}.dkr.ecr.us-isof-south-1.csp.hci.ic.gov`, api: "api.ecr.us-isof-south-1.csp.hci.ic.gov", sts: "sts.us-isof-south-1.csp.hci.ic.gov" },
  { partition: "aws-iso-f", region: "us-isof-south-1", flavour: "FIPS", registry: `${A}.dkr.ecr-fips.us-isof-south-1.csp.hci.ic.gov`, api: "api.ecr-fips.us-isof-south-1.csp.hci.ic.gov", sts: "sts-fips.us-isof-south-1.csp.hci.ic.gov" },
  { partition: "aws-iso-f", region: "us-isof-south-1", flavour: "dual-stack", registry: `${A}.dkr-ecr.us-isof-south-1.csp.hci.ic.gov`, api: "ecr.us-isof-south-1.api.aws.hci.ic.gov", sts: "sts.us-isof-south-1.api.aws.hci.ic.gov" },
  { partition: "aws-iso-f", region: "us-isof-south-1", flavour: "FIPS+dual-stack", registry: `${A}.dkr-ecr-fips.us-isof-south-1.csp.hci.ic.gov`, api: "ecr-fips.us-isof-south-1.api.aws.hci.ic.gov", sts: "sts-fips.us-isof-south-1.api.aws.hci.ic.gov" },
];

/** ECR Public from a node in each partition: the registry call is always us-east-1 in aws; STS is
 * the node's region with the same flavour, so the STS column is the private table's for that
 * partition and flavour. */
const PUBLIC_API: Record<Flavour, string> = {
  plain: "api.ecr-public.us-east-1.amazonaws.com",
  FIPS: "api.ecr-public-fips.us-east-1.amazonaws.com",
  "dual-stack": "ecr-public.us-east-1.api.aws",
  "FIPS+dual-stack": "api.ecr-public-fips.us-east-1.api.aws",
};
const PUBLIC: (Row & { fipsNode: boolean })[] = PRIVATE.map((r) => ({
  ...r,
  registry: r.flavour.includes("dual-stack") ? "ecr-public.aws.com" : "public.ecr.aws",
  api: PUBLIC_API[r.flavour],
  fipsNode: r.flavour.startsWith("FIPS"),
}));

/** The node's environment: static keys, its region, every call through the proxy, no endpoint override. */
function nodeEnv(proxy: LoopbackProxy, region: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: NODE_ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: NODE_SECRET_KEY,
    AWS_REGION: region,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/nonexistent/berth-test/config",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/berth-test/credentials",
    HTTPS_PROXY: proxy.url,
    NO_PROXY: "127.0.0.1",
    ...extra,
  };
}

const TOKEN_REQUEST = {
  serviceAccountToken: SA_TOKEN,
  serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/pull" },
};

/** The hosts one run asked a proxy of its own for (each refused, so the run fails), without the port. */
async function hostsAsked(image: string, region: string, extra: Record<string, string>, token: boolean) {
  const proxy = await startRefusingProxy();
  try {
    const r = await run(request(image, token ? TOKEN_REQUEST : {}), nodeEnv(proxy, region, extra));
    assert.is(r.code, 1, `every call is refused: ${r.stdout}`);
    return [...new Set(proxy.seen.map((t) => t.replace(/^CONNECT /, "").replace(/:443$/, "")))];
  } finally {
    await proxy.close();
  }
}

type Seen = { node: string[]; sts: string[]; token: string[] };

/** Node mode: the registry call. Token mode: STS first; then, with STS answering (the local
 * stand-in), the registry call made with the role's credentials. */
async function seen(image: string, region: string, extra: Record<string, string> = {}): Promise<Seen> {
  const [node, sts, token] = await Promise.all([
    hostsAsked(image, region, extra, false),
    hostsAsked(image, region, extra, true),
    hostsAsked(image, region, { ...extra, AWS_ENDPOINT_URL_STS: s.ep.url }, true),
  ]);
  return { node, sts, token };
}

const partitions = [...new Set(PRIVATE.map((r) => r.partition))];
for (const partition of partitions) {
  const rows = PRIVATE.filter((r) => r.partition === partition);
  test(`ECR in ${partition}: ${rows.map((r) => r.flavour).join(", ")}; node and token mode`, async () => {
    const got = await Promise.all(rows.map((r) => seen(`${r.registry}/app`, r.region)));
    rows.forEach((r, i) => {
      assert.equal(got[i], { node: [r.api], sts: [r.sts], token: [r.api] }, `${r.flavour}: ${r.registry}`);
    });
  });
}

for (const partition of partitions) {
  const rows = PUBLIC.filter((r) => r.partition === partition);
  test(`ECR Public from a node in ${partition}: both hosts, with and without AWS_USE_FIPS_ENDPOINT; node and token mode`, async () => {
    const got = await Promise.all(
      rows.map((r) => seen(`${r.registry}/nginx/nginx`, r.region, r.fipsNode ? { AWS_USE_FIPS_ENDPOINT: "true" } : {})),
    );
    rows.forEach((r, i) => {
      assert.equal(
        got[i],
        { node: [r.api], sts: [r.sts], token: [r.api] },
        `${r.registry}${r.fipsNode ? " with AWS_USE_FIPS_ENDPOINT" : ""} from ${r.region}`,
      );
    });
  });
}

test.run();
