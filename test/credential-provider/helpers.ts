// Shared by the black-box suites: requests, exec, and the assertions every answer must pass.
import * as assert from "uvu/assert";
import { decodeResponseStrict } from "../../shared/kubelet/codec.ts";
import type { ApiVersion, CredentialProviderResponse } from "../../shared/kubelet/types.ts";
import { NODE_SECRET_KEY } from "../helpers/aws-endpoint.ts";
import { CREDENTIAL_PROVIDER, execBinary, type ExecResult } from "../helpers/exec.ts";

export const V1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1";
export const V1BETA1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1beta1";
export const V1ALPHA1: ApiVersion = "credentialprovider.kubelet.k8s.io/v1alpha1";
export const PRIVATE = "123456789012.dkr.ecr.us-west-2.amazonaws.com";
export const SA_TOKEN =
  "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDphcHAifQ.c2lnbmF0dXJlLXNlY3JldA";

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
  const d = decodeResponseStrict(r.stdout, apiVersion);
  if (!d.ok) assert.unreachable(d.error);
  assert.ok(r.stdout.endsWith("}\n"), "one JSON document and a newline");
  return (d as { ok: true; value: CredentialProviderResponse }).value;
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

export function noSecrets(r: ExecResult, secrets: string[] = []): void {
  assert.not.match(r.stderr, /Error\n\s+at /, "no stack trace");
  for (const s of [NODE_SECRET_KEY, ...secrets]) {
    assert.not.ok(r.stderr.includes(s), `secret ${s.slice(0, 6)}… on stderr: ${r.stderr}`);
    assert.not.ok(r.stderr.includes(Buffer.from(s).toString("base64")), "base64 of a secret on stderr");
  }
}
