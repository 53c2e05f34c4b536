// Shared by the black-box suites: requests, exec, and the assertions every answer must pass.
import { suite, type Test } from "uvu";
import * as assert from "uvu/assert";
import type { ApiVersion, CredentialProviderResponse } from "../../shared/kubelet/types.ts";
import {
  type AwsEndpoint,
  type Call,
  DEFAULT_SECRETS,
  defaultBehaviour,
  startAwsEndpoint,
} from "../helpers/aws-endpoint.ts";
import { CREDENTIAL_PROVIDER, execBinary, type ExecResult } from "../helpers/exec.ts";
import { kubeletAnswer } from "../helpers/kubelet-credentials.ts";
import { serviceAccountToken } from "../helpers/service-account-token.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";

export const V1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1";
export const V1BETA1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1beta1";
export const V1ALPHA1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1alpha1";
export const PRIVATE = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
/** The pod's token for service account default/app, as the API server mints it for the kubelet. */
export const SA_TOKEN = serviceAccountToken({ namespace: "default", name: "app", uid: "5b1c3d9e-0000-4a6f-8c1e-app" });

/** A black-box suite with the local AWS stand-in (`ep`, reset to the default behaviour before
 * each test) and a scratch directory (`tmp`), both set up before the first test and removed after
 * the last. */
export type EndpointSuite = { test: Test; ep: AwsEndpoint; tmp: string };

export function endpointSuite(name: string): EndpointSuite {
  const test = suite(name);
  const s = { test } as EndpointSuite;
  test.before(async () => {
    s.ep = await startAwsEndpoint();
    s.tmp = tempDir("credential-provider");
  });
  test.before.each(() => {
    s.ep.behaviour = defaultBehaviour();
  });
  test.after(async () => {
    await s.ep.close();
    removeDir(s.tmp);
  });
  return s;
}

export function request(image: string, extra: Record<string, unknown> = {}, apiVersion: string = V1): string {
  return JSON.stringify({ kind: "CredentialProviderRequest", apiVersion, image, ...extra });
}

/** As the kubelet runs it: args from the config (`get-credentials`), request on stdin. */
export function run(
  stdin: string | Buffer,
  env: Record<string, string>,
  args: string[] = ["get-credentials"],
  timeoutMs?: number,
): Promise<ExecResult> {
  return execBinary(CREDENTIAL_PROVIDER, { stdin, env, args, ...(timeoutMs ? { timeoutMs } : {}) });
}

/** Success: exit 0, one strict-decodable response in the request's apiVersion. */
export function ok(r: ExecResult, apiVersion: ApiVersion = V1): CredentialProviderResponse {
  assert.is(r.code, 0, `exit ${r.code}, stderr: ${r.stderr}`);
  const res = kubeletAnswer(r, apiVersion);
  assert.ok(r.stdout.endsWith("}\n"), "one JSON document and a newline");
  noSecrets(r);
  return res;
}

/** Failure the kubelet's way: exit 1, nothing on stdout, one line on stderr naming the problem, no secret. */
export function failed(r: ExecResult, message: string | RegExp, secrets: string[] = []): void {
  assert.is(r.code, 1, `exit ${r.code}, stdout: ${r.stdout}`);
  assert.is(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  assert.is(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  if (typeof message === "string")
    assert.ok(r.stderr.includes(message), `stderr ${JSON.stringify(r.stderr)} lacks ${JSON.stringify(message)}`);
  else assert.match(r.stderr, message);
  noSecrets(r, secrets);
}

/** Every form in which a secret could be quoted: raw, base64 (padded or not), base64url,
 * percent-encoded, and as the whole ECR token, base64("AWS:" + secret), in the same encodings. */
export function secretForms(secret: string): string[] {
  const encoded = (s: string) => {
    const b64 = Buffer.from(s).toString("base64");
    return [b64, b64.replace(/=+$/, ""), Buffer.from(s).toString("base64url")];
  };
  return [...new Set([secret, encodeURIComponent(secret), ...encoded(secret), ...encoded(`AWS:${secret}`)])];
}

/** No stack trace, and no form of the endpoint's default secrets or of `secrets` on stderr. */
export function noSecrets(r: ExecResult, secrets: string[] = []): void {
  assert.not.match(r.stderr, /Error\n\s+at /, "no stack trace");
  for (const s of [...DEFAULT_SECRETS, ...secrets]) {
    for (const form of secretForms(s)) {
      assert.not.ok(r.stderr.includes(form), `secret ${s.slice(0, 6)}… as ${form.slice(0, 6)}… on stderr: ${r.stderr}`);
    }
  }
}

/** Not even a fragment of `text` (a body the endpoint sent) on stderr: no `length` characters of it in a row. */
export function noFragment(stderr: string, text: string, length = 8): void {
  for (let i = 0; i + length <= text.length; i++) {
    const piece = text.slice(i, i + length);
    assert.not.ok(stderr.includes(piece), `${JSON.stringify(piece)} of the body on stderr: ${stderr}`);
  }
}

/** What `fn` returned, and the calls it made to the endpoint. */
export async function withCalls<T>(ep: AwsEndpoint, fn: () => Promise<T>): Promise<{ result: T; calls: Call[] }> {
  const before = ep.calls.length;
  const result = await fn();
  return { result, calls: ep.calls.slice(before) };
}

/** The calls `fn` made to the endpoint. */
export async function callsOf(ep: AwsEndpoint, fn: () => Promise<unknown>): Promise<Call[]> {
  return (await withCalls(ep, fn)).calls;
}
