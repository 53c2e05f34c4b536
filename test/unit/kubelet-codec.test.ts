// Requests decoded like the anchor (universal decoder), responses as the kubelet's strict decoder
// wants them (k8s pkg/credentialprovider/plugin).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeRequest, decodeResponseStrict, encodeResponse, makeResponse } from "../../shared/kubelet/codec.ts";
import { API_VERSIONS } from "../../shared/kubelet/types.ts";

const test = suite("kubelet: request/response codec");
const V1 = "credentialprovider.kubelet.k8s.io/v1" as const;
const req = (o: Record<string, unknown>) =>
  JSON.stringify({ kind: "CredentialProviderRequest", apiVersion: V1, image: "a.io/b", ...o });

test("decodes every apiVersion; keeps service-account fields only for v1", () => {
  for (const v of API_VERSIONS) {
    const d = decodeRequest(req({ apiVersion: v, serviceAccountToken: "t", serviceAccountAnnotations: { a: "b" } }));
    assert.ok(d.ok);
    if (!d.ok) continue;
    assert.is(d.value.apiVersion, v);
    if (v === V1) {
      assert.is(d.value.serviceAccountToken, "t");
      assert.equal(d.value.serviceAccountAnnotations, { a: "b" });
    } else {
      assert.is(d.value.serviceAccountToken, undefined);
      assert.is(d.value.serviceAccountAnnotations, undefined);
    }
  }
});

test("empty token and annotations are omitted; nulls read as absent", () => {
  const d = decodeRequest(req({ serviceAccountToken: "", serviceAccountAnnotations: null }));
  assert.ok(d.ok);
  if (d.ok) {
    assert.is(d.value.serviceAccountToken, undefined);
    assert.is(d.value.serviceAccountAnnotations, undefined);
  }
  assert.equal(decodeRequest(req({ image: null })), { ok: false, error: "image in plugin request was empty" });
});

test("anchor order and messages: apiVersion, then kind, then image", () => {
  const e = (t: string) => {
    const d = decodeRequest(t);
    return d.ok ? "" : d.error;
  };
  assert.match(e(JSON.stringify({ kind: "X", apiVersion: "v9" })), /^group version v9 is not supported; expected /);
  assert.is(e(JSON.stringify({ kind: "X", apiVersion: V1 })), 'kind was "X", expected CredentialProviderRequest');
  assert.is(e(req({ image: "" })), "image in plugin request was empty");
  assert.match(e("{"), /^error decoding credential provider request: /);
  assert.match(e("null"), /got a JSON null/);
  assert.match(
    e(req({ serviceAccountAnnotations: { a: 1 } })),
    /cannot unmarshal number into Go struct field CredentialProviderRequest.serviceAccountAnnotations of type string/,
  );
  assert.match(
    e(req({ serviceAccountAnnotations: [] })),
    /cannot unmarshal array into Go struct field CredentialProviderRequest.serviceAccountAnnotations of type map\[string\]string/,
  );
  assert.not.match(e("{\n"), /\n/, "one line");
});

test("field names are case-sensitive: 'Image' is not 'image'", () => {
  const d = decodeRequest(JSON.stringify({ kind: "CredentialProviderRequest", apiVersion: V1, Image: "a.io/b" }));
  assert.equal(d, { ok: false, error: "image in plugin request was empty" });
});

test("encodeResponse: only the kubelet's fields, stable order, auth entries copied down to username/password", () => {
  const auth = { "a.io": { username: "u", password: "p", extra: "x" } };
  const text = encodeResponse(makeResponse(V1, { cacheKeyType: "Registry", cacheDuration: "6h0m0s", auth }));
  assert.is(
    text,
    '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"6h0m0s","auth":{"a.io":{"username":"u","password":"p"}}}\n',
  );
  assert.ok(decodeResponseStrict(text, V1).ok);
  const minimal = encodeResponse(makeResponse(V1, { cacheKeyType: "Global" }));
  assert.is(
    minimal,
    '{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Global"}\n',
  );
});

test("decodeResponseStrict refuses what the kubelet refuses", () => {
  const base = { kind: "CredentialProviderResponse", apiVersion: V1, cacheKeyType: "Registry" };
  const e = (o: unknown, v: typeof V1 = V1) => {
    const d = decodeResponseStrict(JSON.stringify(o), v);
    return d.ok ? "" : d.error;
  };
  assert.is(e(base), "");
  assert.match(
    e({ ...base, extra: 1 }),
    /^error decoding credential provider plugin response from stdout: unknown field "extra"/,
  );
  assert.match(e({ ...base, CacheKeyType: "Registry" }), /unknown field "CacheKeyType"/);
  assert.match(e({ ...base, auth: { a: { username: "u", password: "p", email: "e" } } }), /unknown field "auth.email"/);
  assert.match(e({ ...base, cacheDuration: "6 hours" }), /time: unknown unit/);
  assert.is(
    e({ ...base, apiVersion: "credentialprovider.kubelet.k8s.io/v1beta1" }),
    "apiVersion from credential plugin response did not match expected apiVersion:credentialprovider.kubelet.k8s.io/v1, actual apiVersion:credentialprovider.kubelet.k8s.io/v1beta1",
  );
  assert.match(e({ ...base, cacheKeyType: "Pod" }), /invalid cacheKeyType "Pod"/);
  assert.match(e({ ...base, cacheKeyType: undefined }), /invalid cacheKeyType ""/);
});

test.run();
