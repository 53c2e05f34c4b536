// The kubelet API on the wire (k8s.io/kubelet pkg/apis/credentialprovider): every
// apiVersion answered in kind, strict-decodable responses, and bad input refused the kubelet's way.

import * as assert from "uvu/assert";
import { failed, ok, PRIVATE, request, run, SA_TOKEN, V1, V1ALPHA1, V1BETA1, endpointSuite } from "./helpers.ts";

const s = endpointSuite("credential-provider: protocol");
const { test } = s;

for (const v of [V1, V1BETA1, V1ALPHA1]) {
  test(`${v}: response carries the request's apiVersion and only the kubelet's fields`, async () => {
    const r = await run(request(`${PRIVATE}/app`, {}, v), s.ep.env());
    const res = ok(r, v);
    assert.is(res.apiVersion, v);
    assert.equal(Object.keys(JSON.parse(r.stdout) as object).sort(), [
      "apiVersion",
      "auth",
      "cacheDuration",
      "cacheKeyType",
      "kind",
    ]);
    assert.is(res.kind, "CredentialProviderResponse");
    assert.is(res.cacheKeyType, "Registry");
    assert.equal(res.auth, { [PRIVATE]: { username: "AWS", password: "ecr-password-0123456789" } });
    assert.is(r.stderr, "");
  });
}

test("v1beta1 and v1alpha1 have no service-account fields: a token there is ignored (no STS call)", async () => {
  for (const v of [V1BETA1, V1ALPHA1]) {
    const before = s.ep.calls.length;
    const r = await run(
      request(
        `${PRIVATE}/app`,
        {
          serviceAccountToken: SA_TOKEN,
          serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/x" },
        },
        v,
      ),
      s.ep.env(),
    );
    ok(r, v);
    const calls = s.ep.calls.slice(before);
    assert.equal(
      calls.map((c) => c.api),
      ["ecr"],
    );
    assert.is(calls[0]?.scope?.accessKeyId, "AKIDNODE0000EXAMPLE");
  }
});

test("unknown request fields are ignored like the anchor's universal decoder (forward compatible)", async () => {
  const r = await run(request(`${PRIVATE}/app`, { futureField: { x: 1 } }), s.ep.env());
  ok(r);
});

test("positional args and no args are both the protocol path (configs pass get-credentials)", async () => {
  ok(await run(request(`${PRIVATE}/app`), s.ep.env(), []));
  ok(await run(request(`${PRIVATE}/app`), s.ep.env(), ["get-credentials", "--some-future-flag"]));
});

// Whatever `args` a kubelet config carries, a request on stdin gets an answer: an unknown flag
// with its value as a separate argument must not read as `get-credentials IMAGE` (the CLI).
for (const args of [
  ["get-credentials", "-v", "2"],
  ["get-credentials", "--log-level", "debug"],
  ["-v", "4", "get-credentials", "--cache-dir"],
  ["get-credentials", "--help"],
  ["get-credentials", "--version"],
  ["get-credentials", "public.ecr.aws/nginx"],
]) {
  test(`kubelet args ${JSON.stringify(args)} with a request on stdin: the response, nothing else`, async () => {
    const r = await run(request(`${PRIVATE}/app`), s.ep.env(), args);
    ok(r);
    assert.is(r.stderr, "");
  });
}

test("a kubelet arg that fails a flag we know is one line on stderr, not the CLI's usage", async () => {
  failed(
    await run(request(`${PRIVATE}/app`), s.ep.env(), ["get-credentials", "--timeout", "soon"]),
    'invalid timeout: time: invalid duration "soon"',
  );
});

const bad: [string, string | Buffer, string | RegExp][] = [
  [
    "malformed JSON",
    "{not json",
    /error decoding credential provider request: .*expected a CredentialProviderRequest JSON object on stdin/,
  ],
  ["empty stdin", "", "error decoding credential provider request: empty input on stdin"],
  ["a JSON array", "[]", "got a JSON array"],
  [
    "wrong kind (anchor message)",
    JSON.stringify({ kind: "Foo", apiVersion: V1, image: "x" }),
    'kind was "Foo", expected CredentialProviderRequest',
  ],
  ["missing kind", JSON.stringify({ apiVersion: V1, image: "x" }), 'kind was "", expected CredentialProviderRequest'],
  [
    "unknown apiVersion (anchor message, then what we accept)",
    request("x", {}, "credentialprovider.kubelet.k8s.io/v2"),
    "group version credentialprovider.kubelet.k8s.io/v2 is not supported; expected credentialprovider.kubelet.k8s.io/v1, credentialprovider.kubelet.k8s.io/v1beta1 or credentialprovider.kubelet.k8s.io/v1alpha1",
  ],
  [
    "missing apiVersion",
    JSON.stringify({ kind: "CredentialProviderRequest", image: "x" }),
    "group version  is not supported",
  ],
  [
    "wrong-case apiVersion field",
    JSON.stringify({ kind: "CredentialProviderRequest", APIVersion: V1, image: "x" }),
    "is not supported",
  ],
  ["empty image (anchor message)", request(""), "image in plugin request was empty"],
  [
    "image not a string",
    request("x").replace('"image":"x"', '"image":5'),
    "cannot unmarshal number into Go struct field CredentialProviderRequest.image of type string",
  ],
  ["token not a string", request("x", { serviceAccountToken: 7 }), "CredentialProviderRequest.serviceAccountToken"],
  ["huge input (over 4 MiB)", Buffer.alloc(5 * 1024 * 1024, 0x20), "input is more than 4194304 bytes"],
  ["unparseable image (anchor message)", request("bad host/x"), "error parsing image reference bad host/x"],
];
for (const [name, stdin, message] of bad) {
  test(`bad input: ${name} -> exit 1, nothing on stdout, one line on stderr`, async () => {
    const before = s.ep.calls.length;
    const r = await run(stdin, s.ep.env());
    failed(r, message);
    assert.is(s.ep.calls.length, before, "no network call for bad input");
  });
}

test("wrong kind and wrong apiVersion together: apiVersion is checked first (anchor order)", async () => {
  failed(await run(JSON.stringify({ kind: "Foo", apiVersion: "v9" }), s.ep.env()), "group version v9 is not supported");
});

test("NODE_OPTIONS from the kubelet's environment does not reach the binary", async () => {
  const r = await run(request(`${PRIVATE}/app`), s.ep.env({ NODE_OPTIONS: "--require /nonexistent/hook.js" }));
  ok(r);
});

test.run();
