// berth-credential-provider run the way the kubelet runs it: the built binary exec'd with a
// CredentialProviderRequest on stdin and the local AWS stand-in's environment; the answer decoded
// with the kubelet's strict rules and its auth entry picked with the kubelet's own matching
// (pkg/credentialprovider: URLsMatch of each auth key against the image).
import { decodeResponseStrict } from "../../shared/kubelet/codec.ts";
import { urlsMatch } from "../../shared/kubelet/match.ts";
import type { AwsEndpoint } from "./aws-endpoint.ts";
import { CREDENTIAL_PROVIDER, execBinary } from "./exec.ts";

export type Credentials = { username: string; password: string };

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
  if (r.code !== 0) throw new Error(`berth-credential-provider exited ${r.code}: ${r.stderr}`);
  const d = decodeResponseStrict(r.stdout, "credentialprovider.kubelet.k8s.io/v1");
  if (!d.ok) throw new Error(d.error);
  const auth = d.value.auth ?? {};
  const key = Object.keys(auth).find((k) => {
    const m = urlsMatch(k, image);
    return m.ok && m.matched;
  });
  if (key === undefined) throw new Error(`no auth key matches ${image}: ${Object.keys(auth).join(", ")}`);
  const entry = auth[key];
  if (!entry) throw new Error(`auth entry ${key} is empty`);
  return { username: entry.username, password: entry.password };
}
