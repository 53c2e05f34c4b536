// ECR, ECR Public and STS answering what no AWS API sends: garbage, a proxy's HTML page, a body
// that is itself a credential, an empty body, 5xx errors. Whatever the body, the kubelet's log
// gets one line naming the operation, the region and the HTTP status, and not one fragment of the
// body (the SDK's own text for an unparseable answer quotes its start and points at a hidden
// `$response` field).
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { defaultBehaviour, type Behaviour, type StsReply, type TokenReply } from "../helpers/aws-endpoint.ts";
import { failed, noFragment, PRIVATE, request, run, SA_TOKEN, withCalls, endpointSuite } from "./helpers.ts";

const s = endpointSuite("credential-provider: ECR, ECR Public and STS answering garbage");
const { test } = s;

const ROLE = "arn:aws:iam::123456789012:role/ecr-pull";
/** A credential as a body: an ECR token, base64("AWS:" + password), fresh for each run. */
const credentialBody = () => Buffer.from(`AWS:${randomBytes(24).toString("hex")}`).toString("base64");

type Body = { status: number; body: string; contentType?: string };
type Case = { name: string; reply: () => Body; ecr: RegExp; sts: RegExp; quotesNothing: boolean };

const cases: Case[] = [
  {
    name: "200 with garbage",
    reply: () => ({ status: 200, body: "zqxv#garbage!!wvut<>kjhg~~plmo" }),
    ecr: /HTTP 200, a body that is not valid JSON \(application\/x-amz-json-1\.1\)$/,
    sts: /HTTP 200, a body that is not valid XML \(text\/xml\)$/,
    quotesNothing: true,
  },
  {
    name: "502 with a proxy's HTML page",
    reply: () => ({
      status: 502,
      body: "<html><head><title>502 Bad Gateway</title></head><body>upstream unreachable</body></html>",
      contentType: "text/html",
    }),
    ecr: /HTTP 502, a body that is not valid JSON \(text\/html\)$/,
    sts: /HTTP 502, no AWS error in the answer \(text\/html\)$/,
    quotesNothing: true,
  },
  {
    name: "200 with a body that is a credential",
    reply: () => ({ status: 200, body: credentialBody(), contentType: "text/plain" }),
    ecr: /HTTP 200, a body that is not valid JSON \(text\/plain\)$/,
    sts: /HTTP 200, a body that is not valid XML \(text\/plain\)$/,
    quotesNothing: true,
  },
  {
    name: "200 with an empty body",
    reply: () => ({ status: 200, body: "" }),
    ecr: /HTTP 200: authorization data was empty$/,
    sts: /HTTP 200, no credentials for arn:aws:iam::123456789012:role\/ecr-pull$/,
    quotesNothing: true,
  },
  {
    name: "503 with an empty body",
    reply: () => ({ status: 503, body: "" }),
    ecr: /HTTP 503, no AWS error in the answer \(application\/x-amz-json-1\.1\)$/,
    sts: /HTTP 503, no AWS error in the answer \(text\/xml\)$/,
    quotesNothing: true,
  },
  {
    name: "500 with a JSON error type",
    reply: () => ({
      status: 500,
      body: JSON.stringify({ __type: "ServerException", message: "Internal failure, please retry" }),
      contentType: "application/x-amz-json-1.1",
    }),
    // ECR speaks JSON: its error's code and message are the service's words. STS speaks XML.
    ecr: /HTTP 500 ServerException: Internal failure, please retry$/,
    sts: /HTTP 500, a body that is not valid XML \(application\/x-amz-json-1\.1\)$/,
    quotesNothing: false,
  },
];

type Api = {
  name: string;
  image: string;
  extra: Record<string, unknown>;
  args: string[];
  behaviour: (b: Body) => Behaviour;
  prefix: string;
  pattern: (c: Case) => RegExp;
  calls: string[];
};

const raw = (b: Body): TokenReply & StsReply => ({ kind: "raw", ...b });
const apis: Api[] = [
  {
    name: "ECR",
    image: `${PRIVATE}/app`,
    extra: {},
    args: [],
    behaviour: (b) => ({ ...defaultBehaviour(), ecr: raw(b) }),
    prefix: "ECR GetAuthorizationToken in us-west-2 failed: ",
    pattern: (c) => c.ecr,
    calls: ["ecr"],
  },
  {
    name: "ECR Public",
    image: "public.ecr.aws/nginx/nginx",
    extra: {},
    args: [],
    behaviour: (b) => ({ ...defaultBehaviour(), ecrPublic: raw(b) }),
    prefix: "ECR Public GetAuthorizationToken in us-east-1 failed: ",
    pattern: (c) => c.ecr,
    calls: ["ecr-public"],
  },
  {
    name: "STS AssumeRoleWithWebIdentity",
    image: `${PRIVATE}/app`,
    extra: { serviceAccountToken: SA_TOKEN, serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": ROLE } },
    args: [],
    behaviour: (b) => ({ ...defaultBehaviour(), sts: raw(b) }),
    prefix: "failed to assume role: STS AssumeRoleWithWebIdentity in us-west-2 failed: ",
    pattern: (c) => c.sts,
    calls: ["sts"],
  },
  {
    name: "STS AssumeRole (role map)",
    image: `${PRIVATE}/app`,
    extra: {},
    args: ["--role-map", `${PRIVATE}=${ROLE}`],
    behaviour: (b) => ({ ...defaultBehaviour(), sts: raw(b) }),
    prefix: "failed to assume role: STS AssumeRole in us-west-2 failed: ",
    pattern: (c) => c.sts,
    calls: ["sts"],
  },
];

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

for (const api of apis) {
  for (const c of cases) {
    test(`${api.name}, ${c.name}: one line with operation, region and HTTP status, nothing of the body`, async () => {
      const body = c.reply();
      s.ep.behaviour = api.behaviour(body);
      const { result: r, calls } = await withCalls(s.ep, () =>
        run(request(api.image, api.extra), s.ep.env(), ["get-credentials", ...api.args]),
      );
      failed(r, new RegExp(`^berth-credential-provider: ${escapeRegExp(api.prefix)}${api.pattern(c).source}`, "m"), [
        SA_TOKEN,
      ]);
      assert.not.match(r.stderr, "$response", "the SDK's hint about a hidden field");
      assert.not.match(r.stderr, "Deserialization error");
      if (c.quotesNothing && body.body !== "") noFragment(r.stderr, body.body);
      assert.equal([...new Set(calls.map((call) => call.api))], api.calls, "no call after the failing one");
    });
  }
}

test("STS's own XML error on a 503: its code and message, with the status", async () => {
  s.ep.behaviour = {
    ...defaultBehaviour(),
    sts: { kind: "error", status: 503, code: "ServiceUnavailable", message: "Service is unable to handle request" },
  };
  failed(
    await run(request(`${PRIVATE}/app`), s.ep.env(), ["--role-map", `${PRIVATE}=${ROLE}`]),
    "failed to assume role: STS AssumeRole in us-west-2 failed: HTTP 503 ServiceUnavailable: Service is unable to handle request",
  );
});

test("node credentials from AWS_WEB_IDENTITY_TOKEN_FILE, the SDK's STS call answering a credential: named as the credential step, nothing of the body", async () => {
  const body = credentialBody();
  s.ep.behaviour = { ...defaultBehaviour(), sts: { kind: "raw", status: 200, body, contentType: "text/plain" } };
  const dir = mkdtempSync(join(tmpdir(), "berth-irsa-"));
  try {
    writeFileSync(join(dir, "token"), SA_TOKEN);
    const env = s.ep.env({ AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, "token"), AWS_ROLE_ARN: ROLE });
    delete (env as Record<string, string | undefined>).AWS_ACCESS_KEY_ID;
    delete (env as Record<string, string | undefined>).AWS_SECRET_ACCESS_KEY;
    const r = await run(request(`${PRIVATE}/app`), env);
    failed(
      r,
      "ECR GetAuthorizationToken in us-west-2 failed: loading the node's AWS credentials: HTTP 200, a body that is not an AWS answer (text/plain)",
      [SA_TOKEN],
    );
    noFragment(r.stderr, body);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
