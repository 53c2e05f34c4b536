// berth-credential-provider run the way the kubelet runs it: the built binary exec'd with a
// CredentialProviderRequest on stdin and the local AWS stand-in's environment; the answer decoded
// with the kubelet's strict rules and its auth entry picked with the kubelet's own matching
// (pkg/credentialprovider: URLsMatch of each auth key against the image).
import { decodeResponseStrict } from "../../shared/kubelet/codec.ts";
import { urlsMatch } from "../../shared/kubelet/match.ts";
import type { ApiVersion, CredentialProviderResponse } from "../../shared/kubelet/types.ts";
import type { AwsEndpoint } from "./aws-endpoint.ts";
import { CREDENTIAL_PROVIDER, execBinary, type ExecResult } from "./exec.ts";

export type Credentials = { username: string; password: string };

/** What the kubelet makes of a run: exit 0 and one document its strict decoder accepts, or an Error saying why not. */
export function kubeletAnswer(
  r: ExecResult,
  apiVersion: ApiVersion = "credentialprovider.kubelet.k8s.io/v1",
): CredentialProviderResponse {
  if (r.code !== 0) throw new Error(`berth-credential-provider exited ${r.code}: ${r.stderr}`);
  const d = decodeResponseStrict(r.stdout, apiVersion);
  if (!d.ok) throw new Error(`${d.error}: ${r.stdout}`);
  return d.value;
}

/** The auth entry the kubelet would use for `image`. */
export function credentialsFor(res: CredentialProviderResponse, image: string): Credentials {
  const auth = res.auth ?? {};
  const key = Object.keys(auth).find((k) => {
    const m = urlsMatch(k, image);
    return m.ok && m.matched;
  });
  const entry = key === undefined ? undefined : auth[key];
  if (!entry) throw new Error(`no auth key matches ${image}: ${Object.keys(auth).join(", ")}`);
  return { username: entry.username, password: entry.password };
}

export async function providerCredentials(
  ep: AwsEndpoint,
  image: string,
  args: string[] = ["get-credentials"],
  region = "us-west-2",
): Promise<Credentials> {
  const r = await execBinary(CREDENTIAL_PROVIDER, {
    args,
    env: ep.env({ AWS_REGION: region }),
    stdin: JSON.stringify({
      apiVersion: "credentialprovider.kubelet.k8s.io/v1",
      kind: "CredentialProviderRequest",
      image,
    }),
  });
  return credentialsFor(kubeletAnswer(r), image);
}
