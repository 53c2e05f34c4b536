// Beyond the anchor (cloud-provider-aws ecr-credential-provider): disk cache with half-life reuse
// and stale fallback, mirror map, role map, proxies from the environment, the run's deadline, and
// secrets kept off stderr.
import { readdirSync, readFileSync, statSync, writeFileSync, chmodSync, utimesSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { parseGoDuration } from "../../shared/kubelet/duration.ts";
import {
  defaultBehaviour,
  NODE_ACCESS_KEY,
  NODE_SECRET_KEY,
  startAwsEndpoint,
  type Call,
} from "../helpers/aws-endpoint.ts";
import { LOOPBACK_CERT } from "../helpers/loopback-tls.ts";
import { startRelayProxy as startProxy } from "../helpers/proxy.ts";
import {
  failed,
  noSecrets,
  ok,
  PRIVATE,
  request,
  run,
  SA_TOKEN,
  withCalls,
  callsOf,
  endpointSuite,
} from "./helpers.ts";

const s = endpointSuite("credential-provider: cache, mirrors, roles, proxies, deadline, secrets");
const { test } = s;

let dirN = 0;
const freshDir = () => join(s.tmp, `cache-${++dirN}`);

/** How long the endpoint held a call the client gave up on: from its arrival to the client closing it. */
async function heldFor(call: Call | undefined): Promise<number> {
  assert.ok(call, "the call reached the endpoint");
  const endedAt = await (call as Call).ended;
  assert.is((call as Call).answered, false, "the client gave up before any answer");
  return endedAt - (call as Call).receivedAt;
}
/** Timer and event-loop jitter between the client's deadline firing and the endpoint seeing the close. */
const CLOSE_SLACK_MS = 500;

function cacheFiles(dir: string): string[] {
  return readdirSync(dir).map((f) => join(dir, f));
}

const SECONDS = 10n ** 9n;
const durationSeconds = (d: string | undefined): number => {
  const p = parseGoDuration(d ?? "");
  return p.ok ? Number(p.ns / SECONDS) : NaN;
};

test("cache: first run fetches and writes one 0600 file in a 0700 dir; the second run is a hit without any call", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  const first = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  });
  assert.is(first.length, 1);
  const files = cacheFiles(dir);
  assert.is(files.length, 1);
  assert.is(statSync(files[0]!).mode & 0o777, 0o600);
  assert.is(statSync(dir).mode & 0o777, 0o700);
  const second = await withCalls(s.ep, async () => ok(await run(request(`${PRIVATE}/other-repo`), s.ep.env(), args)));
  assert.is(second.calls.length, 0, "served from the disk cache");
  assert.equal(second.result.auth, { [PRIVATE]: { username: "AWS", password: "ecr-password-0123456789" } });
  assert.ok(durationSeconds(second.result.cacheDuration) > 5 * 3600, "half the remaining life");
});

test("cache: directory from BERTH_CACHE_DIR; the flag wins over it", async () => {
  const envDir = freshDir();
  const flagDir = freshDir();
  ok(await run(request(`${PRIVATE}/a`), s.ep.env({ BERTH_CACHE_DIR: envDir })));
  assert.is(cacheFiles(envDir).length, 1);
  ok(
    await run(request(`${PRIVATE}/a`), s.ep.env({ BERTH_CACHE_DIR: envDir }), [
      "get-credentials",
      "--cache-dir",
      flagDir,
    ]),
  );
  assert.is(cacheFiles(flagDir).length, 1);
});

test("cache: keyed by identity: other node keys, a role, another registry each miss", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/a`), s.ep.env({ AWS_ACCESS_KEY_ID: "AKIDOTHER000EXAMPLE" }), args));
    ok(
      await run(
        request(`${PRIVATE}/a`, {
          serviceAccountToken: SA_TOKEN,
          serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": "arn:aws:iam::123456789012:role/r" },
        }),
        s.ep.env(),
        args,
      ),
    );
    ok(await run(request("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a"), s.ep.env(), args));
  });
  assert.equal(
    calls.map((c) => c.api),
    ["ecr", "sts", "ecr", "ecr"],
  );
  assert.is(cacheFiles(dir).length, 4);
});

test("cache: a file readable by others is not trusted", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  chmodSync(cacheFiles(dir)[0]!, 0o644);
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  });
  assert.is(calls.length, 1);
  assert.is(statSync(cacheFiles(dir)[0]!).mode & 0o777, 0o600, "rewritten 0600");
});

/** Moves a cache entry's fetch time back so it is past half-life but still valid for `validFor` ms. */
function age(dir: string, validFor: number, fetchedAgo: number): void {
  const f = cacheFiles(dir)[0]!;
  const entry = JSON.parse(readFileSync(f, "utf8")) as Record<string, number>;
  entry.fetchedAt = Date.now() - fetchedAgo;
  entry.expiresAt = Date.now() + validFor;
  writeFileSync(f, JSON.stringify(entry));
  // The cache dates each file by the end of its use (cache.ts), as it would have written it.
  utimesSync(f, (entry.expiresAt as number) / 1000, (entry.expiresAt as number) / 1000);
}

test("cache: past half-life it refreshes from ECR", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  age(dir, 5 * 3600_000, 7 * 3600_000);
  s.ep.behaviour = { ...defaultBehaviour("rotated-password-1") };
  const { result, calls } = await withCalls(s.ep, async () => ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args)));
  assert.is(calls.length, 1);
  assert.is(result.auth?.[PRIVATE]?.password, "rotated-password-1");
});

test("cache: ECR throttled -> the still-valid cached token is served, short cacheDuration, warning on stderr", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  age(dir, 5 * 3600_000, 7 * 3600_000);
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "ThrottlingException", message: "Rate exceeded" },
  };
  const r = await run(request(`${PRIVATE}/a`), s.ep.env(), args);
  const res = ok(r);
  assert.is(res.auth?.[PRIVATE]?.password, "ecr-password-0123456789");
  assert.ok(durationSeconds(res.cacheDuration) <= 300, `at most 5m: ${res.cacheDuration}`);
  assert.ok(durationSeconds(res.cacheDuration) > 0, `not 0s: ${res.cacheDuration}`);
  assert.match(r.stderr, /serving a cached token .* ThrottlingException: Rate exceeded/);
  noSecrets(r, ["ecr-password-0123456789"]);
});

test("cache: ECR unreachable (hangs past --timeout) -> stale token served before the deadline", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`, "--timeout=2s"];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  age(dir, 5 * 3600_000, 7 * 3600_000);
  s.ep.behaviour = { ...defaultBehaviour(), ecr: { kind: "hang" } };
  const { result: r, calls } = await withCalls(s.ep, () => run(request(`${PRIVATE}/a`), s.ep.env(), args));
  ok(r);
  assert.match(r.stderr, "timed out after 2s");
  // The deadline runs from before the call was sent, so the endpoint holds it less than 2s.
  const held = await heldFor(calls[0]);
  assert.ok(held <= 2000 + CLOSE_SLACK_MS, `the endpoint held the call ${held} ms`);
});

test("cache: a token about to expire is not served when ECR fails", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  age(dir, 30_000, 12 * 3600_000);
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "ThrottlingException", message: "Rate exceeded" },
  };
  failed(await run(request(`${PRIVATE}/a`), s.ep.env(), args), "ThrottlingException: Rate exceeded");
});

test("cache: concurrent cold runs (the kubelet pulls many images at once) all succeed and leave one 0600 file", async () => {
  const dir = freshDir();
  const rs = await Promise.all(
    Array.from({ length: 6 }, () =>
      run(request(`${PRIVATE}/a`), s.ep.env(), ["get-credentials", `--cache-dir=${dir}`]),
    ),
  );
  for (const r of rs) ok(r);
  const files = readdirSync(dir);
  assert.equal(files.filter((f) => f.endsWith(".json")).length, 1);
  assert.equal(
    files.filter((f) => f.endsWith(".tmp")),
    [],
    "no temporary file left",
  );
  assert.is(statSync(join(dir, files[0]!)).mode & 0o777, 0o600);
});

test("cache: an unwritable cache directory is a warning, not a failure", async () => {
  const file = join(s.tmp, "not-a-dir");
  writeFileSync(file, "x");
  const r = await run(request(`${PRIVATE}/a`), s.ep.env(), ["get-credentials", `--cache-dir=${join(file, "sub")}`]);
  ok(r);
  assert.match(r.stderr, "could not write the token cache");
});

test("node credentials: IRSA-style token file (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN) through the SDK's chain", async () => {
  const tokenFile = join(s.tmp, "irsa-token");
  writeFileSync(tokenFile, SA_TOKEN);
  const env = s.ep.env({
    AWS_WEB_IDENTITY_TOKEN_FILE: tokenFile,
    AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/node",
    AWS_REGION: "us-west-2",
  });
  delete (env as Record<string, string | undefined>).AWS_ACCESS_KEY_ID;
  delete (env as Record<string, string | undefined>).AWS_SECRET_ACCESS_KEY;
  const { result, calls } = await withCalls(s.ep, () => run(request(`${PRIVATE}/a`), env));
  ok(result);
  assert.equal(
    calls.map((c) => [c.api, c.form.Action ?? c.scope?.accessKeyId]),
    [
      ["sts", "AssumeRoleWithWebIdentity"],
      ["ecr", "ASIAROLE0000EXAMPLE"],
    ],
  );
});

test("node credentials: none anywhere -> the SDK's own reason (the chain gives up, no wait for our deadline), one line", async () => {
  const env = s.ep.env();
  delete (env as Record<string, string | undefined>).AWS_ACCESS_KEY_ID;
  delete (env as Record<string, string | undefined>).AWS_SECRET_ACCESS_KEY;
  const { result: r, calls } = await withCalls(s.ep, () =>
    run(request(`${PRIVATE}/a`), env, ["get-credentials", "--timeout=20s"]),
  );
  failed(
    r,
    "ECR GetAuthorizationToken in us-west-2 failed: loading the node's AWS credentials: CredentialsProviderError: Could not load credentials from any providers",
  );
  assert.is(calls.length, 0, "nothing unsigned was sent");
});

test("deadline: a hanging endpoint fails with a clear one-line message inside --timeout", async () => {
  s.ep.behaviour = { ...defaultBehaviour(), ecr: { kind: "hang" } };
  const { result: r, calls } = await withCalls(s.ep, () =>
    run(request(`${PRIVATE}/a`), s.ep.env(), ["get-credentials", "--timeout=2s"]),
  );
  failed(r, "timed out after 2s waiting for ECR (region us-west-2); check network access, proxy settings");
  // Measured where the call was held, not by this test's clock: the SDK's own 8s request timeout
  // would hold it far longer than the 2s deadline that started before the call was sent.
  const held = await heldFor(calls[0]);
  assert.ok(held <= 2000 + CLOSE_SLACK_MS, `the endpoint held the call ${held} ms`);
  assert.is(calls.length, 1, "no retry after the deadline");
});

test("deadline: BERTH_TIMEOUT is read, and a timeout beyond the kubelet's limit is refused", async () => {
  failed(
    await run(request(`${PRIVATE}/a`), s.ep.env({ BERTH_TIMEOUT: "2m" })),
    'invalid timeout "2m": must be above 0s and at most 55s',
  );
  failed(
    await run(request(`${PRIVATE}/a`), s.ep.env({ BERTH_TIMEOUT: "soon" })),
    'invalid timeout: time: invalid duration "soon"',
  );
});

test("mirror map: docker.io pulled through an ECR pull-through cache gets the mirror's credentials, keyed docker.io", async () => {
  const { result, calls } = await withCalls(s.ep, async () =>
    ok(
      await run(request("docker.io/library/nginx"), s.ep.env(), [
        "get-credentials",
        "--registry-mirror",
        "docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/dockerhub",
      ]),
    ),
  );
  assert.equal(result.auth, { "docker.io": { username: "AWS", password: "ecr-password-0123456789" } });
  assert.equal(
    calls.map((c) => [c.api, c.scope?.region]),
    [["ecr", "us-east-1"]],
  );
});

test("mirror map from BERTH_REGISTRY_MIRRORS (comma-separated); unmapped hosts unaffected", async () => {
  const env = s.ep.env({
    BERTH_REGISTRY_MIRRORS:
      "quay.io=123456789012.dkr.ecr.eu-west-1.amazonaws.com/quay,docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com",
  });
  const calls = await callsOf(s.ep, async () => {
    assert.equal(Object.keys(ok(await run(request("quay.io/prometheus/node-exporter"), env)).auth ?? {}), ["quay.io"]);
    assert.equal(Object.keys(ok(await run(request(`${PRIVATE}/a`), env)).auth ?? {}), [PRIVATE]);
  });
  assert.equal(
    calls.map((c) => c.scope?.region),
    ["eu-west-1", "us-west-2"],
  );
});

test("mirror map: a target that is not an ECR host is a configuration error", async () => {
  failed(
    await run(request("docker.io/library/nginx"), s.ep.env(), ["--registry-mirror=docker.io=mirror.example.com"]),
    "mirror.example.com is not an ECR registry host",
  );
  failed(
    await run(request("docker.io/library/nginx"), s.ep.env(), ["--registry-mirror=docker.io"]),
    "expected KEY=VALUE",
  );
});

const POOL_ROLE = "arn:aws:iam::210987654321:role/cross-account-pull";
test("role map: STS AssumeRole with the node's keys (signed for sts in the registry's region), ECR with the role's", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request(`${PRIVATE}/a`), s.ep.env(), ["--role-map", `${PRIVATE}=${POOL_ROLE}`]));
  });
  assert.equal(
    calls.map((c) => c.api),
    ["sts", "ecr"],
  );
  assert.is(calls[0]?.form.Action, "AssumeRole");
  assert.is(calls[0]?.form.RoleArn, POOL_ROLE);
  assert.equal(
    [calls[0]?.scope?.service, calls[0]?.scope?.region, calls[0]?.scope?.accessKeyId],
    ["sts", "us-west-2", NODE_ACCESS_KEY],
  );
  assert.is(calls[1]?.scope?.accessKeyId, "ASIAROLE0000EXAMPLE");
});

test("role map by account ID from BERTH_ROLE_MAP; other accounts keep node credentials", async () => {
  const env = s.ep.env({ BERTH_ROLE_MAP: `123456789012=${POOL_ROLE}` });
  const calls = await callsOf(s.ep, async () => {
    ok(await run(request("123456789012.dkr.ecr.eu-west-1.amazonaws.com/a"), env));
    ok(await run(request("999999999999.dkr.ecr.eu-west-1.amazonaws.com/a"), env));
  });
  assert.equal(
    calls.map((c) => [c.api, c.scope?.accessKeyId]),
    [
      ["sts", NODE_ACCESS_KEY],
      ["ecr", "ASIAROLE0000EXAMPLE"],
      ["ecr", NODE_ACCESS_KEY],
    ],
  );
});

test("role map: an entry that is not a role ARN is a configuration error", async () => {
  failed(
    await run(request(`${PRIVATE}/a`), s.ep.env(), ["--role-map", `${PRIVATE}=not-an-arn`]),
    "is not an IAM role ARN",
  );
});

test("proxies: HTTP_PROXY is used for ECR and STS calls (Node's proxyEnv agents)", async () => {
  const proxy = await startProxy();
  try {
    const calls = await callsOf(s.ep, async () => {
      ok(
        await run(request(`${PRIVATE}/a`), s.ep.env({ HTTP_PROXY: proxy.url }), [
          "--role-map",
          `${PRIVATE}=${POOL_ROLE}`,
        ]),
      );
    });
    assert.is(calls.length, 2);
    assert.equal(proxy.seen, [`POST ${s.ep.url}/`, `POST ${s.ep.url}/`]);
  } finally {
    await proxy.close();
  }
});

test("proxies: lower-case http_proxy works too, and NO_PROXY bypasses the proxy", async () => {
  const proxy = await startProxy();
  try {
    ok(await run(request(`${PRIVATE}/a`), s.ep.env({ http_proxy: proxy.url })));
    assert.is(proxy.seen.length, 1);
    ok(await run(request(`${PRIVATE}/a`), s.ep.env({ HTTP_PROXY: proxy.url, NO_PROXY: "127.0.0.1" })));
    assert.is(proxy.seen.length, 1, "NO_PROXY host went direct");
  } finally {
    await proxy.close();
  }
});

test("proxies: HTTPS_PROXY tunnels https calls with CONNECT (TLS end to end to the endpoint)", async () => {
  const proxy = await startProxy();
  const tlsEp = await startAwsEndpoint(defaultBehaviour(), { tls: true });
  const ca = join(s.tmp, "loopback-ca.pem");
  writeFileSync(ca, LOOPBACK_CERT);
  try {
    const r = await run(request(`${PRIVATE}/a`), tlsEp.env({ HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: ca }));
    ok(r);
    const port = new URL(tlsEp.url).port;
    assert.equal(proxy.seen, [`CONNECT 127.0.0.1:${port}`]);
    assert.equal(
      tlsEp.calls.map((c) => [c.api, c.scope?.region]),
      [["ecr", "us-west-2"]],
    );
  } finally {
    await proxy.close();
    await tlsEp.close();
  }
});

test("proxies: a dead proxy fails within the deadline with the SDK's reason, not a hang", async () => {
  const r = await run(request(`${PRIVATE}/a`), s.ep.env({ HTTP_PROXY: "http://127.0.0.1:9" }), ["--timeout=10s"]);
  failed(r, /ECR GetAuthorizationToken in us-west-2 failed: .*(ECONNREFUSED|connect)/);
});

test("secrets: an SDK error that echoes keys, session token or the pod's token is redacted on stderr", async () => {
  // A pod's token is longer than the message the kubelet's log gets: it is cut before it, whole.
  const echo = `bad request: key ${NODE_SECRET_KEY} session role-session-token-do-not-print-555 token ${SA_TOKEN}`;
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "InvalidParameterException", message: echo },
  };
  const r = await run(
    request(`${PRIVATE}/a`, {
      serviceAccountToken: SA_TOKEN,
      serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": POOL_ROLE },
    }),
    s.ep.env(),
  );
  failed(r, "HTTP 400 InvalidParameterException: bad request: key [REDACTED] session [REDACTED] token …", [
    SA_TOKEN,
    "role-session-token-do-not-print-555",
    "role-secret-do-not-print-987654321",
  ]);
});

test("secrets: an ECR error echoing the cached token as ECR issues it, base64('AWS:' + password), is redacted in the stale-cache warning", async () => {
  const dir = freshDir();
  const args = ["get-credentials", `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/a`), s.ep.env(), args));
  age(dir, 5 * 3600_000, 7 * 3600_000);
  const token = Buffer.from("AWS:ecr-password-0123456789").toString("base64");
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "ExpiredTokenException", message: `token ${token} has expired` },
  };
  const r = await run(request(`${PRIVATE}/a`), s.ep.env(), args);
  const res = ok(r);
  assert.is(res.auth?.[PRIVATE]?.password, "ecr-password-0123456789", "the stale token is served");
  assert.match(r.stderr, "HTTP 400 ExpiredTokenException: token [REDACTED] has expired");
  noSecrets(r, [token]);
});

test("secrets: an STS error echoing the start of the web identity token is redacted", async () => {
  s.ep.behaviour = {
    ...defaultBehaviour(),
    sts: {
      kind: "error",
      status: 400,
      code: "InvalidIdentityToken",
      message: `token ${SA_TOKEN.slice(0, 200)} is not valid`,
    },
  };
  const r = await run(
    request(`${PRIVATE}/a`, {
      serviceAccountToken: SA_TOKEN,
      serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": POOL_ROLE },
    }),
    s.ep.env(),
  );
  failed(
    r,
    "failed to assume role: STS AssumeRoleWithWebIdentity in us-west-2 failed: HTTP 400 InvalidIdentityTokenException: token [REDACTED] is not valid",
    [SA_TOKEN, SA_TOKEN.slice(0, 200)],
  );
});

test.run();
