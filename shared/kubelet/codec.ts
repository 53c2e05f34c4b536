// Decoding requests and encoding responses of the kubelet credential provider API.
//
// Requests: decoded like the anchor (cloud-provider-aws ecr-credential-provider) does, with the
// apimachinery universal decoder: case-sensitive field names, wrong types are errors, unknown
// fields are ignored (a newer kubelet may add request fields; serviceAccountToken arrived this way
// in 1.33). Checks in the anchor's order and with its messages: apiVersion, kind, image.
// Responses: only fields the kubelet's strict decoder accepts, in the request's apiVersion.
import {
  API_VERSIONS,
  CACHE_KEY_TYPES,
  REQUEST_KIND,
  RESPONSE_KIND,
  isApiVersion,
  type ApiVersion,
  type AuthConfig,
  type CacheKeyType,
  type CredentialProviderRequest,
  type CredentialProviderResponse,
} from "./types.ts";
import { parseGoDuration } from "./duration.ts";
import { errorMessage, isJsonObject } from "../json.ts";

export type Decoded<T> = { ok: true; value: T } | { ok: false; error: string };

const EXPECTED_VERSIONS = `${API_VERSIONS.slice(0, -1).join(", ")} or ${API_VERSIONS[API_VERSIONS.length - 1]}`;

function jsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : typeof v;
}

/** One line, whatever the parser said. */
function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

const typeError = (field: string, v: unknown, want: string): string =>
  `error decoding credential provider request: json: cannot unmarshal ${jsonType(v)} into Go struct field CredentialProviderRequest.${field} of type ${want}`;

export function decodeRequest(text: string): Decoded<CredentialProviderRequest> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const detail = text.trim() === "" ? "empty input on stdin" : oneLine(errorMessage(e));
    return {
      ok: false,
      error: `error decoding credential provider request: ${detail}; expected a ${REQUEST_KIND} JSON object on stdin`,
    };
  }
  if (!isJsonObject(raw)) {
    return {
      ok: false,
      error: `error decoding credential provider request: got a JSON ${jsonType(raw)}; expected a ${REQUEST_KIND} JSON object on stdin`,
    };
  }
  const apiVersion = raw.apiVersion ?? "";
  if (!isApiVersion(apiVersion)) {
    const shown = typeof apiVersion === "string" ? apiVersion : JSON.stringify(apiVersion);
    return { ok: false, error: `group version ${shown} is not supported; expected ${EXPECTED_VERSIONS}` };
  }
  const kind = raw.kind ?? "";
  if (kind !== REQUEST_KIND) {
    return { ok: false, error: `kind was ${JSON.stringify(kind)}, expected ${REQUEST_KIND}` };
  }
  const image = raw.image ?? "";
  if (typeof image !== "string") return { ok: false, error: typeError("image", image, "string") };
  const req: CredentialProviderRequest = { kind: REQUEST_KIND, apiVersion, image };
  // v1beta1 and v1alpha1 have no service-account fields: the universal decoder drops them.
  if (apiVersion.endsWith("/v1")) {
    const token = raw.serviceAccountToken ?? "";
    if (typeof token !== "string") return { ok: false, error: typeError("serviceAccountToken", token, "string") };
    if (token !== "") req.serviceAccountToken = token;
    const ann = raw.serviceAccountAnnotations ?? null;
    if (ann !== null) {
      if (!isJsonObject(ann))
        return { ok: false, error: typeError("serviceAccountAnnotations", ann, "map[string]string") };
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(ann)) {
        if (typeof v !== "string") return { ok: false, error: typeError("serviceAccountAnnotations", v, "string") };
        out[k] = v;
      }
      if (Object.keys(out).length) req.serviceAccountAnnotations = out;
    }
  }
  if (image === "") return { ok: false, error: "image in plugin request was empty" };
  return { ok: true, value: req };
}

export type ResponseBody = {
  cacheKeyType: CacheKeyType;
  cacheDuration?: string;
  auth?: Record<string, AuthConfig>;
};

export function makeResponse(apiVersion: ApiVersion, body: ResponseBody): CredentialProviderResponse {
  const res: CredentialProviderResponse = { kind: RESPONSE_KIND, apiVersion, cacheKeyType: body.cacheKeyType };
  if (body.cacheDuration !== undefined) res.cacheDuration = body.cacheDuration;
  if (body.auth !== undefined) {
    // Copy only the two fields the kubelet knows, whatever the caller's objects hold.
    const auth: Record<string, AuthConfig> = {};
    for (const [k, v] of Object.entries(body.auth)) auth[k] = { username: v.username, password: v.password };
    res.auth = auth;
  }
  return res;
}

export function encodeResponse(res: CredentialProviderResponse): string {
  return `${JSON.stringify(makeResponse(res.apiVersion, res))}\n`;
}

// The kubelet's side (pkg/credentialprovider/plugin): a strict decode, then the apiVersion check.
// Used by tests and by `get-credentials` to prove that what we print is what the kubelet accepts.
const RESPONSE_FIELDS = new Set(["kind", "apiVersion", "cacheKeyType", "cacheDuration", "auth"]);
const AUTH_FIELDS = new Set(["username", "password"]);

export function decodeResponseStrict(
  text: string,
  expectedApiVersion: ApiVersion,
): Decoded<CredentialProviderResponse> {
  const fail = (why: string): Decoded<CredentialProviderResponse> => ({
    ok: false,
    error: `error decoding credential provider plugin response from stdout: ${why}`,
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(oneLine(errorMessage(e)));
  }
  if (!isJsonObject(raw)) return fail(`got a JSON ${jsonType(raw)}`);
  for (const k of Object.keys(raw)) if (!RESPONSE_FIELDS.has(k)) return fail(`unknown field ${JSON.stringify(k)}`);
  const { kind, apiVersion, cacheKeyType, cacheDuration, auth } = raw;
  if (typeof kind !== "string" || typeof apiVersion !== "string") return fail("kind and apiVersion must be strings");
  if (cacheKeyType !== undefined && typeof cacheKeyType !== "string") return fail("cacheKeyType must be a string");
  if (cacheDuration !== undefined && cacheDuration !== null) {
    if (typeof cacheDuration !== "string") return fail("cacheDuration must be a string");
    const d = parseGoDuration(cacheDuration);
    if (!d.ok) return fail(d.error);
  }
  const authOut: Record<string, AuthConfig> = {};
  if (auth !== undefined && auth !== null) {
    if (!isJsonObject(auth)) return fail("auth must be an object");
    for (const [key, entry] of Object.entries(auth)) {
      if (!isJsonObject(entry)) return fail(`auth[${JSON.stringify(key)}] must be an object`);
      for (const f of Object.keys(entry)) if (!AUTH_FIELDS.has(f)) return fail(`unknown field "auth.${f}"`);
      const username = entry.username ?? "";
      const password = entry.password ?? "";
      if (typeof username !== "string" || typeof password !== "string")
        return fail("username and password must be strings");
      authOut[key] = { username, password };
    }
  }
  if (apiVersion !== expectedApiVersion) {
    return {
      ok: false,
      error: `apiVersion from credential plugin response did not match expected apiVersion:${expectedApiVersion}, actual apiVersion:${apiVersion}`,
    };
  }
  if (kind !== RESPONSE_KIND)
    return {
      ok: false,
      error: `kind from credential plugin response was ${JSON.stringify(kind)}, expected ${RESPONSE_KIND}`,
    };
  if (!(CACHE_KEY_TYPES as readonly unknown[]).includes(cacheKeyType)) {
    return { ok: false, error: `invalid cacheKeyType ${JSON.stringify(cacheKeyType ?? "")}` };
  }
  return {
    ok: true,
    value: makeResponse(expectedApiVersion, {
      cacheKeyType: cacheKeyType as CacheKeyType,
      ...(typeof cacheDuration === "string" ? { cacheDuration } : {}),
      ...(auth !== undefined && auth !== null ? { auth: authOut } : {}),
    }),
  };
}
