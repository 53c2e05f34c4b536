// --log-file FILE: the kubelet discards a plugin's stderr when it succeeds
// (pkg/credentialprovider/plugin/plugin.go: execPlugin.ExecPlugin quotes it only in an error), so
// an outage the cache hides, or a warning about a non-ECR host, leaves no trace there. One JSON
// line per request instead: time, image, registry, source, role, duration, warning or error;
// never a secret; whole lines under concurrent appends; bounded by rotation to FILE.1.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as assert from "uvu/assert";
import { ageCachedToken } from "../helpers/token-cache.ts";
import { defaultBehaviour, DEFAULT_SECRETS } from "../helpers/aws-endpoint.ts";
import { endpointSuite, failed, ok, PRIVATE, request, run, SA_TOKEN, secretForms } from "./helpers.ts";

const s = endpointSuite("credential-provider: the request log (--log-file)");
const { test } = s;

let n = 0;
const freshLog = () => join(s.tmp, `requests-${++n}.log`);
type Line = Record<string, unknown>;
const lines = (file: string): Line[] =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Line);

const ROLE = "arn:aws:iam::123456789012:role/pull";

test("one line per request: ecr, then cache, then stale-cache with the outage's warning, then an error", async () => {
  const log = freshLog();
  const dir = join(s.tmp, `cache-${n}`);
  const args = ["get-credentials", `--log-file=${log}`, `--cache-dir=${dir}`];
  ok(await run(request(`${PRIVATE}/app`), s.ep.env(), args));
  ok(await run(request(`${PRIVATE}/other`), s.ep.env(), args));
  // Past half-life with hours left, and ECR throttling: the cached token hides the outage.
  ageCachedToken(dir);
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: { kind: "error", status: 400, type: "ThrottlingException", message: "Rate exceeded" },
  };
  const stale = await run(request(`${PRIVATE}/app`), s.ep.env(), args);
  ok(stale);
  failed(await run(request("bad host/x"), s.ep.env(), args), "error parsing image reference");
  const got = lines(log);
  assert.equal(
    got.map((l) => [l.image, l.registry, l.source]),
    [
      [`${PRIVATE}/app`, PRIVATE, "ecr"],
      [`${PRIVATE}/other`, PRIVATE, "cache"],
      [`${PRIVATE}/app`, PRIVATE, "stale-cache"],
      ["bad host/x", undefined, "error"],
    ],
  );
  assert.match(String(got[2]?.warning), /serving a cached token .* ThrottlingException: Rate exceeded/);
  assert.match(String(got[3]?.error), "error parsing image reference bad host/x");
  for (const l of got) {
    assert.ok(!Number.isNaN(Date.parse(String(l.time))), `time ${l.time}`);
    assert.ok(typeof l.durationMs === "number" && l.durationMs >= 0, `duration ${l.durationMs}`);
  }
  assert.is(statSync(log).mode & 0o777, 0o600);
});

test("the role and identity are logged, the warning for a non-ECR host too; no secret ever is", async () => {
  const log = freshLog();
  const args = ["get-credentials", `--log-file=${log}`];
  // A pod's pull through the role its service account names.
  const asRole = () =>
    run(
      request(`${PRIVATE}/app`, {
        serviceAccountToken: SA_TOKEN,
        serviceAccountAnnotations: { "eks.amazonaws.com/ecr-role-arn": ROLE },
      }),
      s.ep.env(),
      args,
    );
  ok(await asRole());
  ok(await run(request("registry.example.com/app"), s.ep.env({ AWS_REGION: "eu-west-1" }), args));
  s.ep.behaviour = {
    ...defaultBehaviour(),
    ecr: {
      kind: "error",
      status: 400,
      type: "InvalidParameterException",
      // What this run knows: the node's key, the role's session credentials, the pod's token.
      message: "echo node-secret-key-do-not-print-0123456789 role-session-token-do-not-print-555",
    },
  };
  failed(await asRole(), "InvalidParameterException: echo [REDACTED] [REDACTED]");
  const got = lines(log);
  assert.equal(
    got.map((l) => [l.source, l.identity, l.role]),
    [
      ["ecr", "web-identity", ROLE],
      ["ecr", "node", undefined],
      ["error", "web-identity", ROLE],
    ],
  );
  assert.match(String(got[2]?.error), "InvalidParameterException: echo [REDACTED] [REDACTED]");
  assert.match(String(got[1]?.warning), "registry.example.com is not an ECR registry host");
  const text = readFileSync(log, "utf8");
  for (const secret of [...DEFAULT_SECRETS, SA_TOKEN])
    for (const form of secretForms(secret)) assert.not.ok(text.includes(form), `${secret.slice(0, 8)}… in the log`);
  assert.not.match(text, "default.app", "no claim of the pod's token");
  assert.not.match(text, "5b1c3d9e", "no claim of the pod's token");
});

test("concurrent appends: 24 processes at once, 24 whole lines", async () => {
  const log = freshLog();
  const rs = await Promise.all(
    Array.from({ length: 24 }, (_, i) => run(request(`${PRIVATE}/app-${i}`), s.ep.env(), [`--log-file=${log}`])),
  );
  for (const r of rs) ok(r);
  const got = lines(log);
  assert.is(got.length, 24);
  assert.equal(got.map((l) => l.image).sort(), Array.from({ length: 24 }, (_, i) => `${PRIVATE}/app-${i}`).sort());
});

test("bounded by rotation: the file stays under --log-file-max-bytes, the previous one is FILE.1", async () => {
  const log = freshLog();
  const args = [`--log-file=${log}`, "--log-file-max-bytes=4096"];
  for (let i = 0; i < 40; i++) ok(await run(request(`${PRIVATE}/app-${i}`), s.ep.env(), args));
  assert.ok(statSync(log).size <= 4096, `${statSync(log).size} bytes`);
  assert.ok(existsSync(`${log}.1`), "rotated");
  assert.ok(statSync(`${log}.1`).size <= 4096, `${statSync(`${log}.1`).size} bytes`);
  assert.is(lines(log).at(-1)?.image, `${PRIVATE}/app-39`, "the newest line is in FILE");
  assert.not.ok(existsSync(`${log}.2`), "one generation kept");
});

test("BERTH_LOG_FILE works like the flag; a log that cannot be written never fails the answer", async () => {
  const log = freshLog();
  ok(await run(request(`${PRIVATE}/app`), s.ep.env({ BERTH_LOG_FILE: log })));
  assert.is(lines(log).length, 1);
  const r = await run(request(`${PRIVATE}/app`), s.ep.env(), [`--log-file=${join(s.tmp, "no-such-dir", "x.log")}`]);
  ok(r);
  assert.match(r.stderr, "could not append to the log file");
});

test.run();
