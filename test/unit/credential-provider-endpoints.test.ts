// FIPS and dual-stack API endpoints chosen from the registry host, resolved by the real AWS SDK
// (its endpoint rules) with a request handler that records the host instead of sending.
import { ECRClient, GetAuthorizationTokenCommand } from "@aws-sdk/client-ecr";
import {
  ECRPUBLICClient,
  GetAuthorizationTokenCommand as PublicGetAuthorizationTokenCommand,
} from "@aws-sdk/client-ecr-public";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadConfig } from "../../credential-provider/config.ts";
import { clientConfig } from "../../credential-provider/ecr.ts";
import { planFor } from "../../credential-provider/provider.ts";
import { errorMessage } from "../../shared/json.ts";

const test = suite("credential-provider: API endpoints from the host");

async function apiHost(image: string, env: Record<string, string> = {}): Promise<string> {
  const cfg = loadConfig([], env);
  if (!cfg.ok) throw new Error(cfg.error);
  const p = planFor(
    { kind: "CredentialProviderRequest", apiVersion: "credentialprovider.kubelet.k8s.io/v1", image },
    cfg.value,
  );
  if (!p.ok) throw new Error(p.error);
  let host = "";
  const requestHandler = {
    handle: async (r: { hostname: string; port?: number }) => {
      host = r.port ? `${r.hostname}:${r.port}` : r.hostname;
      throw new Error("recorded");
    },
  };
  const conf = {
    ...clientConfig(p.plan, env),
    requestHandler,
    credentials: { accessKeyId: "AKID", secretAccessKey: "secret" },
    maxAttempts: 1,
  };
  try {
    if (p.plan.api === "ecr") await new ECRClient(conf).send(new GetAuthorizationTokenCommand({}));
    else await new ECRPUBLICClient(conf).send(new PublicGetAuthorizationTokenCommand({}));
  } catch (e) {
    if (errorMessage(e) !== "recorded") throw e;
  }
  return host;
}

const cases: [string, string][] = [
  ["123456789012.dkr.ecr.us-west-2.amazonaws.com/a", "api.ecr.us-west-2.amazonaws.com"],
  ["123456789012.dkr.ecr-fips.us-west-2.amazonaws.com/a", "api.ecr-fips.us-west-2.amazonaws.com"],
  ["123456789012.dkr-ecr.us-west-2.on.aws/a", "ecr.us-west-2.api.aws"],
  ["123456789012.dkr-ecr-fips.us-west-2.on.aws/a", "ecr-fips.us-west-2.api.aws"],
  ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a", "api.ecr.cn-north-1.amazonaws.com.cn"],
  ["123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn/a", "ecr.cn-north-1.api.amazonwebservices.com.cn"],
  ["123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/a", "api.ecr-fips.us-gov-west-1.amazonaws.com"],
  ["123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov/a", "api.ecr.us-iso-east-1.c2s.ic.gov"],
  ["123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu/a", "api.ecr.eusc-de-east-1.amazonaws.eu"],
  ["public.ecr.aws/a", "api.ecr-public.us-east-1.amazonaws.com"],
];
for (const [image, host] of cases) {
  test(`${image.split("/")[0]} -> ${host}`, async () => {
    assert.is(await apiHost(image), host);
  });
}

test("with an endpoint override FIPS and dual-stack are off, even where AWS_USE_FIPS_ENDPOINT says on (the SDK refuses the combination)", () => {
  const cfg = loadConfig([], {});
  if (!cfg.ok) throw new Error(cfg.error);
  const p = planFor(
    {
      kind: "CredentialProviderRequest",
      apiVersion: "credentialprovider.kubelet.k8s.io/v1",
      image: "123456789012.dkr-ecr-fips.us-west-2.on.aws/a",
    },
    cfg.value,
  );
  if (!p.ok) throw new Error(p.error);
  const plain = clientConfig(p.plan, {}) as Record<string, unknown>;
  assert.is(plain.useFipsEndpoint, true);
  assert.is(plain.useDualstackEndpoint, true);
  for (const env of [{ AWS_ENDPOINT_URL_ECR: "http://127.0.0.1:1" }, { AWS_ENDPOINT_URL: "http://127.0.0.1:1" }]) {
    const c = clientConfig(p.plan, env) as Record<string, unknown>;
    assert.is(c.useFipsEndpoint, false);
    assert.is(c.useDualstackEndpoint, false);
  }
});

test("a plain host leaves the SDK's own AWS_USE_FIPS_ENDPOINT setting alone", () => {
  const cfg = loadConfig([], {});
  if (!cfg.ok) throw new Error(cfg.error);
  const p = planFor(
    {
      kind: "CredentialProviderRequest",
      apiVersion: "credentialprovider.kubelet.k8s.io/v1",
      image: "123456789012.dkr.ecr.us-west-2.amazonaws.com/a",
    },
    cfg.value,
  );
  if (!p.ok) throw new Error(p.error);
  const c = clientConfig(p.plan, {}) as Record<string, unknown>;
  assert.not.ok("useFipsEndpoint" in c);
  assert.not.ok("useDualstackEndpoint" in c);
});

test.run();
