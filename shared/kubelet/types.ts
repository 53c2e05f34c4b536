// The kubelet image credential provider API (k8s.io/kubelet pkg/apis/credentialprovider/{v1,v1beta1,v1alpha1}).
// The three versions share one shape; only v1 (k8s 1.33+) carries the service-account fields.

export const GROUP = "credentialprovider.kubelet.k8s.io";
export const API_VERSIONS = [`${GROUP}/v1`, `${GROUP}/v1beta1`, `${GROUP}/v1alpha1`] as const;
export type ApiVersion = (typeof API_VERSIONS)[number];
export const REQUEST_KIND = "CredentialProviderRequest";
export const RESPONSE_KIND = "CredentialProviderResponse";

export function isApiVersion(v: unknown): v is ApiVersion {
  return typeof v === "string" && (API_VERSIONS as readonly string[]).includes(v);
}

export type CredentialProviderRequest = {
  kind: typeof REQUEST_KIND;
  apiVersion: ApiVersion;
  /** Image without tag or digest, short names expanded (`docker.io/library/nginx`); may carry a port. */
  image: string;
  /** v1 only, and only when the provider config has tokenAttributes (k8s 1.33+). */
  serviceAccountToken?: string;
  serviceAccountAnnotations?: Record<string, string>;
};

export const CACHE_KEY_TYPES = ["Image", "Registry", "Global"] as const;
export type CacheKeyType = (typeof CACHE_KEY_TYPES)[number];

export type AuthConfig = { username: string; password: string };

export type CredentialProviderResponse = {
  kind: typeof RESPONSE_KIND;
  apiVersion: ApiVersion;
  cacheKeyType: CacheKeyType;
  /** Go duration string (`6h0m0s`); `0s` = do not cache; absent = the config's defaultCacheDuration. */
  cacheDuration?: string;
  /** match key (same rules as matchImages) -> credentials */
  auth?: Record<string, AuthConfig>;
};
