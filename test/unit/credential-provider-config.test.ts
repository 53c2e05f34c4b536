// Flags and environment (credential-provider/config.ts): flags win, lists, validation.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import {
  DEFAULT_CACHE_MAX_ENTRIES,
  DEFAULT_FAILURE_MEMORY_MS,
  DEFAULT_TIMEOUT_MS,
  isPersonCommand,
  loadConfig,
  mappedRole,
  mirrorFor,
  wantsCli,
} from "../../credential-provider/config.ts";

const test = suite("credential-provider: config");
const load = (argv: string[], env: Record<string, string> = {}) => {
  const c = loadConfig(argv, env);
  if (!c.ok) throw new Error(c.error);
  return c.value;
};
const err = (argv: string[], env: Record<string, string> = {}) => {
  const c = loadConfig(argv, env);
  return c.ok ? "" : c.error;
};

test("defaults: no cache, no maps, 30s deadline, no region", () => {
  const c = load([]);
  assert.is(c.cacheDir, undefined);
  assert.equal(c.mirrors, []);
  assert.is(c.roleMap.size, 0);
  assert.is(c.timeoutMs, DEFAULT_TIMEOUT_MS);
  assert.is(c.defaultRegion, undefined);
});

test("positionals and unknown flags are ignored (drop-in for the anchor's configs)", () => {
  const c = load(["get-credentials", "--v=2", "--cache-dir", "/x", "extra"]);
  assert.is(c.cacheDir, "/x");
});

test("flags win over variables; empty variables read as unset", () => {
  assert.is(load(["--cache-dir=/flag"], { BERTH_CACHE_DIR: "/env" }).cacheDir, "/flag");
  assert.is(load([], { BERTH_CACHE_DIR: "/env" }).cacheDir, "/env");
  assert.is(load([], { BERTH_CACHE_DIR: " " }).cacheDir, undefined);
  assert.is(load(["--timeout=5s"], { BERTH_TIMEOUT: "10s" }).timeoutMs, 5000);
  assert.is(load([], { BERTH_TIMEOUT: "1.5s" }).timeoutMs, 1500);
});

test("region: AWS_REGION, else AWS_DEFAULT_REGION", () => {
  assert.is(load([], { AWS_DEFAULT_REGION: "eu-west-1" }).defaultRegion, "eu-west-1");
  assert.is(load([], { AWS_DEFAULT_REGION: "eu-west-1", AWS_REGION: "us-east-2" }).defaultRegion, "us-east-2");
});

test("mirror map: repeatable flags, comma lists, lower-cased sources; target path dropped", () => {
  const c = load([
    "--registry-mirror",
    "Docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/dockerhub",
    "--registry-mirror=quay.io=123456789012.dkr.ecr.us-east-1.amazonaws.com/quay,ghcr.io=public.ecr.aws",
  ]);
  assert.equal(c.mirrors, [
    { source: "docker.io", target: "123456789012.dkr.ecr.us-east-1.amazonaws.com" },
    { source: "quay.io", target: "123456789012.dkr.ecr.us-east-1.amazonaws.com" },
    { source: "ghcr.io", target: "public.ecr.aws" },
  ]);
  assert.equal(mirrorFor(c, "DOCKER.IO")?.source, "docker.io");
  assert.is(mirrorFor(c, "docker.io:443"), undefined, "a registry with a port is another registry");
  assert.is(
    load([], { BERTH_REGISTRY_MIRRORS: "docker.io=123456789012.dkr.ecr.us-east-1.amazonaws.com" }).mirrors.length,
    1,
  );
  assert.match(err(["--registry-mirror=docker.io=example.com"]), "example.com is not an ECR registry host");
  assert.match(err(["--registry-mirror==x"]), "expected KEY=VALUE");
});

test("role map: by host or by account ID; ARNs checked", () => {
  const c = load([], {
    BERTH_ROLE_MAP:
      "123456789012=arn:aws:iam::123456789012:role/a, 210987654321.dkr.ecr.eu-west-1.amazonaws.com=arn:aws-cn:iam::210987654321:role/b",
  });
  assert.equal(mappedRole(c, "123456789012.dkr.ecr.us-west-2.amazonaws.com", "123456789012"), {
    roleArn: "arn:aws:iam::123456789012:role/a",
    webIdentity: false,
  });
  assert.equal(mappedRole(c, "210987654321.dkr.ecr.eu-west-1.amazonaws.com", "210987654321"), {
    roleArn: "arn:aws-cn:iam::210987654321:role/b",
    webIdentity: false,
  });
  assert.equal(
    mappedRole(load(["--role-map=123456789012=web-identity:arn:aws:iam::123456789012:role/w"]), "h", "123456789012"),
    { roleArn: "arn:aws:iam::123456789012:role/w", webIdentity: true },
    "web-identity: marks an entry that uses the pod's token",
  );
  assert.match(err(["--role-map=x=web-identity:nope"]), '"nope" is not an IAM role ARN');
  assert.is(mappedRole(c, "210987654321.dkr.ecr.us-east-1.amazonaws.com", "210987654321"), undefined);
  assert.match(err(["--role-map=x=arn:aws:s3:::bucket"]), "is not an IAM role ARN");
});

test("timeout: Go duration above 0 and at most 55s", () => {
  assert.match(err(["--timeout=0s"]), "must be above 0s and at most 55s");
  assert.match(err(["--timeout=56s"]), "must be above 0s and at most 55s");
  assert.match(err(["--timeout=5"]), "missing unit");
  assert.is(load(["--timeout=55s"]).timeoutMs, 55000);
});

test("kubelet path vs a person: only help/version, validate-config, get-credentials IMAGE or a terminal", () => {
  assert.not.ok(wantsCli([], false));
  assert.not.ok(wantsCli(["get-credentials"], false));
  assert.not.ok(wantsCli(["get-credentials", "--cache-dir", "/var/cache/x"], false), "a flag's value is not an IMAGE");
  assert.not.ok(wantsCli(["--v=2", "get-credentials"], false));
  assert.ok(wantsCli(["get-credentials", "public.ecr.aws/x"], false));
  assert.ok(wantsCli(["--help"], false));
  assert.ok(wantsCli(["-h"], false));
  assert.ok(wantsCli(["--version"], false));
  assert.ok(wantsCli(["validate-config", "f.yaml"], false));
  assert.ok(wantsCli([], true));
});

test("only --version, --help or validate-config skip stdin; anything else is read first", () => {
  assert.ok(isPersonCommand(["--version"]));
  assert.ok(isPersonCommand(["--help"]));
  assert.ok(isPersonCommand(["-h"]));
  assert.ok(isPersonCommand(["validate-config", "f.yaml", "--image", "x"]));
  assert.not.ok(isPersonCommand(["get-credentials", "--version"]), "a kubelet config may pass anything");
  assert.not.ok(isPersonCommand(["get-credentials", "public.ecr.aws/x"]));
  assert.not.ok(isPersonCommand(["get-credentials", "-v", "2"]));
});

test("round-two settings: cache cap, failure memory, role annotations, token mode, log file", () => {
  const d = load([]);
  assert.equal(
    [d.cacheMaxEntries, d.failureMemoryMs, d.roleAnnotations, d.tokenMode, d.logFile],
    [
      DEFAULT_CACHE_MAX_ENTRIES,
      DEFAULT_FAILURE_MEMORY_MS,
      ["eks.amazonaws.com/ecr-role-arn"],
      "node-fallback",
      undefined,
    ],
  );
  const c = load([
    "--cache-max-entries=5",
    "--failure-memory=0s",
    "--role-annotation",
    "a.io/x",
    "--role-annotation=b.io/y",
    "--token-mode=fail-closed",
    "--log-file=/var/log/x.log",
    "--log-file-max-bytes=8192",
  ]);
  assert.equal(
    [c.cacheMaxEntries, c.failureMemoryMs, c.roleAnnotations, c.tokenMode, c.logFile],
    [5, 0, ["a.io/x", "b.io/y"], "fail-closed", { path: "/var/log/x.log", maxBytes: 8192 }],
  );
  const e = load([], {
    BERTH_ROLE_ANNOTATIONS: "eks.amazonaws.com/ecr-role-arn,eks.amazonaws.com/role-arn",
    BERTH_FAILURE_MEMORY: "90s",
    BERTH_LOG_FILE: "/l",
  });
  assert.equal([e.roleAnnotations.length, e.failureMemoryMs, e.logFile?.path], [2, 90_000, "/l"]);
  assert.match(err(["--failure-memory=2h"]), "must be between 0s (off) and 1h");
  assert.match(err(["--cache-max-entries=x"]), "expected a whole number of at least 1");
  assert.match(err(["--log-file=/x", "--log-file-max-bytes=10"]), "at least 4096");
  assert.match(err(["--token-mode=open"]), 'invalid token mode "open"');
  assert.is(load(["--cache-dir"]).cacheDir, undefined, "a flag without its value reads as unset");
});

test.run();
