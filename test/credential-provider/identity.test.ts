// Whose credentials a token-mode request gets, on the wire: the role annotations (a present key
// decides, an empty value meaning the node's credentials, as in the anchor's
// buildCredentialsProvider), role-map entries that keep their meaning in token mode unless
// marked web-identity:, --role-annotation, --token-mode=fail-closed and the per-workload
// RoleSessionName.
import * as assert from "uvu/assert";
import { NODE_ACCESS_KEY } from "../helpers/aws-endpoint.ts";
import { serviceAccountToken } from "../helpers/service-account-token.ts";
import { callsOf, endpointSuite, failed, ok, PRIVATE, request, run, SA_TOKEN } from "./helpers.ts";

const s = endpointSuite("credential-provider: identity in token mode");
const { test } = s;

const ANNOTATION = "eks.amazonaws.com/ecr-role-arn";
const POD_ROLE = "arn:aws:iam::123456789012:role/pod-pull";
const MAP_ROLE = "arn:aws:iam::210987654321:role/cross-account-pull";
const ENV_ROLE = "arn:aws:iam::123456789012:role/env-default";
const ROLE_KEYS = "ASIAROLE0000EXAMPLE";

const withToken = (annotations?: Record<string, string>) =>
  request(`${PRIVATE}/app`, {
    serviceAccountToken: SA_TOKEN,
    ...(annotations ? { serviceAccountAnnotations: annotations } : {}),
  });

/** Each call as [api, STS action or the access key that signed it, role asked for]. */
const shape = (calls: Awaited<ReturnType<typeof callsOf>>) =>
  calls.map((c) => [c.api, c.api === "sts" ? c.form.Action : c.scope?.accessKeyId, c.form.RoleArn]);

test("an empty role annotation means the node's credentials: not the role map, not AWS_ECR_ROLE_ARN", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ [ANNOTATION]: "" }), s.ep.env({ AWS_ECR_ROLE_ARN: ENV_ROLE })));
    ok(
      await run(withToken({ [ANNOTATION]: "" }), s.ep.env(), ["get-credentials", `--role-map=${PRIVATE}=${MAP_ROLE}`]),
    );
  });
  assert.equal(shape(calls), [
    ["ecr", NODE_ACCESS_KEY, undefined],
    ["ecr", NODE_ACCESS_KEY, undefined],
  ]);
});

test("token mode keeps a role-map entry's meaning: AssumeRole signed with the node's keys, not the pod's token", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken(), s.ep.env(), ["get-credentials", `--role-map=${PRIVATE}=${MAP_ROLE}`]));
  });
  assert.equal(shape(calls), [
    ["sts", "AssumeRole", MAP_ROLE],
    ["ecr", ROLE_KEYS, undefined],
  ]);
  assert.is(calls[0]?.scope?.accessKeyId, NODE_ACCESS_KEY, "signed with the node's keys");
  assert.is(calls[0]?.form.WebIdentityToken, undefined, "the pod's token is not sent");
});

test("a role-map entry marked web-identity: uses the pod's token (AssumeRoleWithWebIdentity), unsigned", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken(), s.ep.env(), ["get-credentials", `--role-map=${PRIVATE}=web-identity:${MAP_ROLE}`]));
  });
  assert.equal(shape(calls), [
    ["sts", "AssumeRoleWithWebIdentity", MAP_ROLE],
    ["ecr", ROLE_KEYS, undefined],
  ]);
  assert.is(calls[0]?.scope, undefined, "web identity is not signed");
  assert.is(calls[0]?.form.WebIdentityToken, SA_TOKEN);
});

test("the annotation still wins over a role-map entry", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ [ANNOTATION]: POD_ROLE }), s.ep.env(), ["--role-map", `${PRIVATE}=${MAP_ROLE}`]));
  });
  assert.equal(shape(calls), [
    ["sts", "AssumeRoleWithWebIdentity", POD_ROLE],
    ["ecr", ROLE_KEYS, undefined],
  ]);
});

test("a web-identity role-map entry and a request without a token: a clear error, no call", async () => {
  const calls = await callsOf(s.ep, async () => {
    failed(
      await run(request(`${PRIVATE}/app`), s.ep.env(), [`--role-map=${PRIVATE}=web-identity:${MAP_ROLE}`]),
      "needs the pod's service-account token, and the request has none",
    );
  });
  assert.equal(calls, []);
});

test("--role-annotation KEY, repeatable and in order: eks.amazonaws.com/role-arn when ecr-role-arn is absent", async () => {
  const args = ["get-credentials", "--role-annotation", ANNOTATION, "--role-annotation", "eks.amazonaws.com/role-arn"];
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ "eks.amazonaws.com/role-arn": POD_ROLE }), s.ep.env(), args));
    ok(await run(withToken({ "eks.amazonaws.com/role-arn": MAP_ROLE, [ANNOTATION]: POD_ROLE }), s.ep.env(), args));
  });
  assert.equal(
    calls.filter((c) => c.api === "sts").map((c) => c.form.RoleArn),
    [POD_ROLE, POD_ROLE],
    "the first key present wins",
  );
});

test("without --role-annotation, eks.amazonaws.com/role-arn is not read (the anchor's one key)", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ "eks.amazonaws.com/role-arn": POD_ROLE }), s.ep.env()));
  });
  assert.equal(shape(calls), [["ecr", NODE_ACCESS_KEY, undefined]]);
});

test("--token-mode=fail-closed: a pod with a token and no role gets an error, not the node's credentials", async () => {
  const calls = await callsOf(s.ep, async () => {
    failed(
      await run(withToken(), s.ep.env(), ["get-credentials", "--token-mode=fail-closed"]),
      `no role for ${PRIVATE}: the service account has no ${ANNOTATION} annotation`,
    );
    failed(
      await run(withToken({ [ANNOTATION]: "" }), s.ep.env({ BERTH_TOKEN_MODE: "fail-closed" })),
      "--token-mode=fail-closed refuses them to a pod",
    );
  });
  assert.equal(calls, [], "nothing was asked");
});

test("--token-mode=fail-closed: a role still works, and a request without a token keeps the node's credentials", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ [ANNOTATION]: POD_ROLE }), s.ep.env(), ["--token-mode=fail-closed"]));
    ok(await run(request(`${PRIVATE}/app`), s.ep.env(), ["--token-mode=fail-closed"]));
  });
  assert.equal(shape(calls), [
    ["sts", "AssumeRoleWithWebIdentity", POD_ROLE],
    ["ecr", ROLE_KEYS, undefined],
    ["ecr", NODE_ACCESS_KEY, undefined],
  ]);
  failed(await run(withToken(), s.ep.env(), ["--token-mode=closed"]), 'invalid token mode "closed"');
});

test("RoleSessionName is <namespace>.<serviceaccount>, cut to 64 characters, so CloudTrail names the workload", async () => {
  const long = serviceAccountToken({ namespace: `team-${"n".repeat(40)}`, name: `svc-${"a".repeat(40)}`, uid: "u-1" });
  const calls = await callsOf(s.ep, async () => {
    ok(await run(withToken({ [ANNOTATION]: POD_ROLE }), s.ep.env()));
    ok(
      await run(
        request(`${PRIVATE}/app`, { serviceAccountToken: long, serviceAccountAnnotations: { [ANNOTATION]: POD_ROLE } }),
        s.ep.env(),
      ),
    );
  });
  const names = calls.filter((c) => c.api === "sts").map((c) => c.form.RoleSessionName);
  assert.equal(names, ["default.app", `team-${"n".repeat(40)}.svc-${"a".repeat(40)}`.slice(0, 64)]);
  assert.is(names[1]?.length, 64);
});

test("a token whose claims name no workload keeps the anchor's session name", async () => {
  const calls = await callsOf(s.ep, async () => {
    ok(
      await run(
        request(`${PRIVATE}/app`, {
          serviceAccountToken: "opaque-token-not-a-jwt",
          serviceAccountAnnotations: { [ANNOTATION]: POD_ROLE },
        }),
        s.ep.env(),
      ),
    );
  });
  assert.is(calls[0]?.form.RoleSessionName, "ecr-credential-provider");
});

test.run();
