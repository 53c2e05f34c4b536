// ecr-credential-provider's own test cases (cloud-provider-aws cmd/ecr-credential-provider
// main_test.go), numbered by the behaviour they pin down, against the local ECR/ECR Public/STS
// endpoint that checks each call's SigV4 credential scope.
import { ANCHOR_NON_MATCHES } from "../helpers/ecr-hosts.ts";
import * as assert from "uvu/assert";
import { parseGoDuration } from "../../shared/kubelet/duration.ts";
import { defaultBehaviour, NODE_ACCESS_KEY, type Call } from "../helpers/aws-endpoint.ts";
import {
  callsOf,
  failed,
  noSecrets,
  ok,
  PRIVATE,
  request,
  run,
  SA_TOKEN,
  withCalls,
  endpointSuite,
} from "./helpers.ts";

const s = endpointSuite("credential-provider: anchor parity");
const { test } = s;

const SECONDS = 10n ** 9n;

/** The anchor's getCacheDuration (cmd/ecr-credential-provider/main.go): (expiresAt.Unix() -
 * time.Now().Unix()) / 2 seconds, for every instant the binary may have read its clock: after the
 * endpoint answered, before the process ended. Returns the allowed whole seconds. */
async function anchorCacheSeconds(call: Call | undefined, exitedAt: number): Promise<number[]> {
  assert.ok(call?.expiresAt !== undefined, "the endpoint sent a token with an expiry");
  const expiresAt = (call as Call).expiresAt as number;
  const answeredAt = await (call as Call).ended;
  const half = (nowMs: number) => Math.trunc((expiresAt - Math.floor(nowMs / 1000)) / 2);
  const allowed: number[] = [];
  for (let s = half(exitedAt); s <= half(answeredAt); s++) allowed.push(s);
  return allowed;
}

function cacheSeconds(cacheDuration: string | undefined): number {
  const d = parseGoDuration(cacheDuration ?? "");
  if (!d.ok) assert.unreachable(d.error);
  return d.ok ? Number(d.ns / SECONDS) : Number.NaN;
}

test("1. private ECR host: Registry key = host, user and password from the token, signed for ecr in the host's region", async () => {
  const { result: res, calls } = await withCalls(s.ep, async () =>
    ok(await run(request(`${PRIVATE}/foobar`), s.ep.env())),
  );
  const exitedAt = Date.now();
  const { cacheDuration, ...rest } = res;
  assert.equal(rest, {
    kind: "CredentialProviderResponse",
    apiVersion: "credentialprovider.kubelet.k8s.io/v1",
    cacheKeyType: "Registry",
    auth: { [PRIVATE]: { username: "AWS", password: "ecr-password-0123456789" } },
  });
  const allowed = await anchorCacheSeconds(calls[0], exitedAt);
  assert.ok(allowed.includes(cacheSeconds(cacheDuration)), `cacheDuration ${cacheDuration}, anchor: ${allowed} s`);
  assert.equal(
    calls.map((c) => [c.api, c.scope?.region, c.scope?.service, c.scope?.accessKeyId]),
    [["ecr", "us-west-2", "ecr", NODE_ACCESS_KEY]],
  );
});

test("token split on the first colon only", async () => {
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "token", username: "AWS", password: "pa:ss:word", expiresIn: 3600 },
  };
  const res = ok(await run(request(`${PRIVATE}/x`), s.ep.env()));
  assert.equal(res.auth?.[PRIVATE], { username: "AWS", password: "pa:ss:word" });
});

test("2. a private host whose path looks like ECR Public stays private", async () => {
  const calls = await callsOf(s.ep, async () => {
    const res = ok(await run(request(`${PRIVATE}/public.ecr.aws/foo:latest`), s.ep.env()));
    assert.equal(Object.keys(res.auth ?? {}), [PRIVATE]);
  });
  assert.equal(
    calls.map((c) => [c.api, c.scope?.region]),
    [["ecr", "us-west-2"]],
  );
});

test("3. non-ECR host: ECR still called in the default region (AWS_REGION), key = that host, warning on stderr", async () => {
  const { result: r, calls } = await withCalls(s.ep, () =>
    run(request("registry.k8s.io/foo"), s.ep.env({ AWS_REGION: "eu-central-1" })),
  );
  const res = ok(r);
  assert.equal(Object.keys(res.auth ?? {}), ["registry.k8s.io"]);
  assert.equal(
    calls.map((c) => [c.api, c.scope?.region]),
    [["ecr", "eu-central-1"]],
  );
  assert.match(r.stderr, "registry.k8s.io is not an ECR registry host; asking ECR in the default region eu-central-1");
});

test("3b. AWS_DEFAULT_REGION is honoured like the Go anchor (the JS SDK alone ignores it)", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request("registry.k8s.io/foo"), s.ep.env({ AWS_DEFAULT_REGION: "ap-southeast-2" })));
  });
  assert.equal(
    calls.map((c) => c.scope?.region),
    ["ap-southeast-2"],
  );
});

test("3c. AWS_REGION wins over AWS_DEFAULT_REGION", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request("quay.io/foo"), s.ep.env({ AWS_DEFAULT_REGION: "ap-southeast-2", AWS_REGION: "sa-east-1" })));
  });
  assert.equal(
    calls.map((c) => c.scope?.region),
    ["sa-east-1"],
  );
});

test("3d. non-ECR host with no region anywhere: the SDK's error, one line, exit 1", async () => {
  failed(
    await run(request("quay.io/foo"), s.ep.env()),
    /ECR GetAuthorizationToken in the default region failed: .*[Rr]egion.*\(warning: quay.io is not an ECR registry host/,
  );
});

const outputs: [string, string, string][] = [
  ["{} (anchor: authorization data was empty)", "{}", "authorization data was empty"],
  ["empty list", '{"authorizationData":[]}', "authorization data was empty"],
  ["[{}] (anchor: token was nil)", '{"authorizationData":[{}]}', "authorization token in response was nil"],
  [
    "token base64('foo') (anchor: parse error)",
    `{"authorizationData":[{"authorizationToken":"${Buffer.from("foo").toString("base64")}"}]}`,
    "error parsing username and password from authorization token",
  ],
];
for (const [name, body, message] of outputs) {
  test(`4. ECR output ${name}`, async () => {
    s.ep.behaviour = { ...defaultBehaviour(), ecr: { kind: "raw", status: 200, body } };
    failed(await run(request(`${PRIVATE}/x`), s.ep.env()), message);
  });
}

test("4. ECR API error passed through (name and message), exit 1", async () => {
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: {
      kind: "error",
      status: 400,
      type: "AccessDeniedException",
      message: "User is not authorized to perform ecr:GetAuthorizationToken",
    },
  };
  failed(
    await run(request(`${PRIVATE}/x`), s.ep.env()),
    "ECR GetAuthorizationToken in us-west-2 failed: HTTP 400 AccessDeniedException: User is not authorized to perform ecr:GetAuthorizationToken",
  );
});

const ROLE = "arn:aws:iam::123456789012:role/ecr-pull";
// Where the anchor names every session "ecr-credential-provider", ours name the workload.
test("5. SA token + role annotation: STS AssumeRoleWithWebIdentity (session <namespace>.<serviceaccount>), ECR signed with the role's keys", async () => {
  const { result: r, calls } = await withCalls(s.ep, () =>
    run(
      request(`${PRIVATE}/x`, {
        serviceAccountToken: SA_TOKEN,
        serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": ROLE },
      }),
      s.ep.env(),
    ),
  );
  ok(r);
  noSecrets(r, [SA_TOKEN]);
  assert.equal(
    calls.map((c) => c.api),
    ["sts", "ecr"],
  );
  assert.equal(calls[0]?.form, {
    Action: "AssumeRoleWithWebIdentity",
    Version: "2011-06-15",
    RoleArn: ROLE,
    RoleSessionName: "default.app",
    WebIdentityToken: SA_TOKEN,
  });
  assert.is(calls[1]?.scope?.accessKeyId, "ASIAROLE0000EXAMPLE");
  assert.is(calls[1]?.headers["x-amz-security-token"], "role-session-token-do-not-print-555");
  assert.is(calls[1]?.scope?.region, "us-west-2");
});

test("5. SA token works without node credentials at all (web identity needs none)", async () => {
  const env = s.ep.env();
  delete (env as Record<string, string | undefined>).AWS_ACCESS_KEY_ID;
  delete (env as Record<string, string | undefined>).AWS_SECRET_ACCESS_KEY;
  const calls = await callsOf(s.ep, async () => {
    ok(
      await run(
        request(`${PRIVATE}/x`, {
          serviceAccountToken: SA_TOKEN,
          serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": ROLE },
        }),
        env,
      ),
    );
  });
  assert.equal(
    calls.map((c) => c.api),
    ["sts", "ecr"],
  );
});

test("5. SA token without annotation: AWS_ECR_ROLE_ARN is the role", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/x`, { serviceAccountToken: SA_TOKEN }), s.ep.env({ AWS_ECR_ROLE_ARN: ROLE })));
  });
  assert.equal(
    calls.map((c) => [c.api, c.form.RoleArn]),
    [
      ["sts", ROLE],
      ["ecr", undefined],
    ],
  );
});

test("5. SA token without annotation or AWS_ECR_ROLE_ARN: node credentials, no STS", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/x`, { serviceAccountToken: SA_TOKEN }), s.ep.env()));
  });
  assert.equal(
    calls.map((c) => [c.api, c.scope?.accessKeyId]),
    [["ecr", NODE_ACCESS_KEY]],
  );
});

test("5. STS error: 'failed to assume role: …', no ECR call, no token on stderr", async () => {
  s.ep.behaviour = {
    ...defaultBehaviour(),
    sts: {
      kind: "error",
      status: 403,
      code: "AccessDenied",
      message: "Not authorized to perform sts:AssumeRoleWithWebIdentity",
    },
  };
  const { result: r, calls } = await withCalls(s.ep, () =>
    run(
      request(`${PRIVATE}/x`, {
        serviceAccountToken: SA_TOKEN,
        serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": ROLE },
      }),
      s.ep.env(),
    ),
  );
  failed(
    r,
    "failed to assume role: STS AssumeRoleWithWebIdentity in us-west-2 failed: HTTP 403 AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity",
    [SA_TOKEN],
  );
  assert.equal(
    calls.map((c) => c.api),
    ["sts"],
  );
});

for (const host of ["public.ecr.aws", "ecr-public.aws.com"]) {
  test(`6. ${host}: ECR Public GetAuthorizationToken signed for ecr-public in us-east-1, whatever AWS_REGION says`, async () => {
    const { result: res, calls } = await withCalls(s.ep, async () =>
      ok(await run(request(`${host}/nginx/nginx`), s.ep.env({ AWS_REGION: "eu-west-1" }))),
    );
    assert.equal(res.auth, { [host]: { username: "AWS", password: "public-ecr-password-0123456789" } });
    assert.equal(
      calls.map((c) => [c.api, c.scope?.service, c.scope?.region]),
      [["ecr-public", "ecr-public", "us-east-1"]],
    );
  });
}

test("6. ECR Public output without a token: anchor's error", async () => {
  s.ep.behaviour = { ...defaultBehaviour(), ecrPublic: { kind: "raw", status: 200, body: '{"authorizationData":{}}' } };
  failed(await run(request("public.ecr.aws/x"), s.ep.env()), "authorization token in response was nil");
  s.ep.behaviour = { ...defaultBehaviour(), ecrPublic: { kind: "raw", status: 200, body: "{}" } };
  failed(await run(request("public.ecr.aws/x"), s.ep.env()), "authorization data was empty");
});

const grid: [string, string][] = [
  ["123456789012.dkr.ecr.us-west-2.amazonaws.com", "us-west-2"],
  ["123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn", "cn-north-1"],
  ["123456789012.dkr.ecr.us-gov-east-1.amazonaws.com", "us-gov-east-1"],
  ["123456789012.dkr.ecr.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"],
  ["123456789012.dkr.ecr.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1"],
  ["123456789012.dkr.ecr.eusc-de-east-1.amazonaws.eu", "eusc-de-east-1"],
  ["123456789012.dkr-ecr.us-west-2.on.aws", "us-west-2"],
  ["123456789012.dkr-ecr-fips.us-west-2.on.aws", "us-west-2"],
  ["123456789012.dkr.ecr-fips.us-east-1.amazonaws.com", "us-east-1"],
  ["123456789012.dkr-ecr.cn-north-1.on.amazonwebservices.com.cn", "cn-north-1"],
  ["123456789012.dkr.ecr.eu-isoe-west-1.cloud.adc-e.uk", "eu-isoe-west-1"],
  ["123456789012.dkr.ecr.us-isof-south-1.csp.hci.ic.gov", "us-isof-south-1"],
];
for (const [host, region] of grid) {
  test(`7. region on the wire: ${host} -> ${region}`, async () => {
    const calls = await callsOf(s.ep, async () => {
      const res = ok(await run(request(`${host}/app`), s.ep.env({ AWS_REGION: "ap-south-1" })));
      assert.equal(Object.keys(res.auth ?? {}), [host]);
    });
    assert.equal(
      calls.map((c) => [c.scope?.service, c.scope?.region]),
      [["ecr", region]],
    );
  });
}

const nonMatches = ANCHOR_NON_MATCHES;
test('8. regex non-matches go to the default region ("!" parses as a host character, as in Go)', async () => {
  for (const host of nonMatches) {
    const before = s.ep.calls.length;
    const r = await run(request(`${host}/app`), s.ep.env({ AWS_REGION: "ap-south-1" }));
    ok(r);
    assert.equal(
      s.ep.calls.slice(before).map((c) => c.scope?.region),
      ["ap-south-1"],
      host,
    );
    assert.match(r.stderr, "is not an ECR registry host", host);
  }
});

test("9. cacheDuration: token without expiresAt -> 0s", async () => {
  s.ep.behaviour = { ...defaultBehaviour(), ecr: { kind: "token", password: "p", expiresIn: null } };
  assert.is(ok(await run(request(`${PRIVATE}/x`), s.ep.env())).cacheDuration, "0s");
});

test("9. cacheDuration: token valid 12h -> the anchor's half of the remaining life in whole seconds, Go duration text", async () => {
  const { result: res, calls } = await withCalls(s.ep, async () => ok(await run(request(`${PRIVATE}/x`), s.ep.env())));
  const allowed = await anchorCacheSeconds(calls[0], Date.now());
  assert.ok(
    allowed.includes(cacheSeconds(res.cacheDuration)),
    `cacheDuration ${res.cacheDuration}, anchor: ${allowed} s`,
  );
  assert.match(
    res.cacheDuration ?? "",
    /^[1-6]h[0-9]{1,2}m[0-9]{1,2}s$/,
    "Go's time.Duration.String, as the kubelet reads it",
  );
});

test("10. wrong kind or wrong apiVersion: error, empty stdout", async () => {
  failed(
    await run(
      JSON.stringify({
        kind: "CredentialProviderResponse",
        apiVersion: "credentialprovider.kubelet.k8s.io/v1",
        image: "x",
      }),
      s.ep.env(),
    ),
    'kind was "CredentialProviderResponse", expected CredentialProviderRequest',
  );
  failed(
    await run(request("x", {}, "credentialprovider.kubelet.k8s.io/v1beta2"), s.ep.env()),
    "group version credentialprovider.kubelet.k8s.io/v1beta2 is not supported",
  );
});

test.run();
