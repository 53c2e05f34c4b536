// The credential half of the containerd stage: berth-credential-provider's answer,
// passed to containerd 1.6's CRI PullImage exactly as the kubelet passes it, against a real
// registry (Debian's docker-registry with htpasswd, playing ECR: its password is the token the local
// AWS stand-in hands out). Then the mirror case: a hosts.toml mirror for another registry name
// pointing at that registry, and berth's --registry-mirror mapping that name to ECR. Which host
// gets the credentials and whether the source ever sees the token is recorded by HTTP fronts
// (helpers/http-recorder.ts) and pinned here; credential-provider/README.md documents it.
//
// The registry, the recording fronts and containerd all run inside the test's namespaces
// (helpers/containerd.ts): containerd pulls over that namespace's loopback only. The provider runs
// in the test's own namespace, as the kubelet runs it, with the AWS stand-in on 127.0.0.1.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { type AwsEndpoint, defaultBehaviour, startAwsEndpoint } from "../helpers/aws-endpoint.ts";
import { type Containerd, startContainerd, sweepStaleContainerd } from "../helpers/containerd.ts";
import { CREDENTIAL_PROVIDER } from "../helpers/exec.ts";
import { type Recorder, type RecordedRequest, sha256, startRecorder } from "../helpers/http-recorder.ts";
import { type Credentials, providerCredentials } from "../helpers/kubelet-credentials.ts";
import { installCleanupHandlers, sweepStale } from "../helpers/netns.ts";
import { singleFileTar, writeOciLayout } from "../helpers/oci-image.ts";
import { gated, needExecutable } from "../helpers/peers.ts";
import { removeDir, tempDir } from "../helpers/temp.ts";
import { freePortVia, REGISTRY_TOOLS, type Registry, startRegistry } from "../helpers/registry.ts";
import { type AuthConfig, type Cri, criClient, isCriError } from "./cri-client.ts";
import { peerRequirements, SANDBOX_IMAGE } from "./ipam-suite.ts";

const test = suite("containerd 1.6 CRI PullImage with berth-credential-provider's credentials");
const { define: it, ready } = gated(test, "containerd", [
  {
    what: `${CREDENTIAL_PROVIDER} (run \`npm run build\`)`,
    ok: existsSync(CREDENTIAL_PROVIDER),
    always: true,
  },
  ...peerRequirements(),
  needExecutable(REGISTRY_TOOLS.registry, "docker-registry"),
  needExecutable(REGISTRY_TOOLS.skopeo, "skopeo"),
  needExecutable(REGISTRY_TOOLS.htpasswd, "apache2-utils"),
]);

/** What ECR's pull-through cache rule would put in front of the mirrored repositories. */
const CACHE_PREFIX = "cache";
const ECR_MIRROR = `123456789012.dkr.ecr.us-east-1.amazonaws.com/${CACHE_PREFIX}`;

/**
 * runtime.v1.AuthConfig as the kubelet fills it from a credential provider: its keyring keeps only
 * Username, Password (and an empty Email) of each auth entry (pkg/credentialprovider/keyring.go,
 * BasicDockerKeyring.Add), and PullImage copies Username, Password, Auth, ServerAddress,
 * IdentityToken and RegistryToken of that entry (pkg/kubelet/kuberuntime/kuberuntime_image.go).
 * So containerd gets a username and a password and no server_address.
 */
const kubeletAuth = (c: Credentials): AuthConfig => ({ username: c.username, password: c.password });

let work = "";
const token = `ecr-${randomBytes(12).toString("hex")}`;
let ep: AwsEndpoint | undefined;
let ctd: Containerd | undefined;
let cri: Cri | undefined;
let registry: Registry | undefined;
/** The recording front of the registry, used as the hosts.toml mirror. */
let mirror: Recorder | undefined;
/** The source registry of the mirror case: records every request, accepts none. */
let source: Recorder | undefined;
/** A second source whose hosts.toml makes the mirror its only host (no fallback). */
let sourceNoFallback: Recorder | undefined;
/** A third source whose hosts.toml has only a `server` line (the mirror), no [host] table. */
let sourceServerOnly: Recorder | undefined;

const the = () => {
  if (!ep || !ctd || !cri || !registry || !mirror || !source || !sourceNoFallback || !sourceServerOnly)
    throw new Error("set-up failed");
  return { ep, ctd, cri, registry, mirror, source, sourceNoFallback, sourceServerOnly };
};

async function sync(...recorders: Recorder[]): Promise<void> {
  const { ctd: c } = the();
  for (const r of recorders)
    await r.sync((url) =>
      c.exec(process.execPath, ["-e", `fetch(${JSON.stringify(url)}).then(()=>{},()=>process.exit(1))`]),
    );
}

async function pull(
  image: string,
  auth?: AuthConfig,
): Promise<{ ok: true; ref: string } | { ok: false; error: string }> {
  try {
    const r = await the().cri.call("ImageService/PullImage", { image: { image }, ...(auth ? { auth } : {}) });
    return { ok: true, ref: r.image_ref };
  } catch (e) {
    if (!isCriError(e)) throw e;
    return { ok: false, error: e.details };
  }
}

const withToken = (r: RecordedRequest, secret: string) =>
  r.auth.scheme === "basic" && r.auth.user === "AWS" && r.auth.passwordSha256 === sha256(secret);

function hostsToml(dir: string, host: string, lines: string[]): void {
  mkdirSync(join(dir, host), { recursive: true });
  writeFileSync(join(dir, host, "hosts.toml"), `${lines.join("\n")}\n`);
}

test.before(async () => {
  if (!ready) return;
  installCleanupHandlers();
  sweepStale();
  await sweepStaleContainerd();
  work = tempDir("containerd-pull");
  const certsD = join(work, "certs.d");
  mkdirSync(certsD);
  ep = await startAwsEndpoint(defaultBehaviour(token));
  ctd = await startContainerd({
    tag: "pull",
    cniBinDir: work,
    networks: {},
    sandboxImage: SANDBOX_IMAGE,
    registryConfigPath: certsD,
  });
  const c = ctd;
  registry = await startRegistry({
    dir: join(work, "registry"),
    user: "AWS",
    password: token,
    port: await freePortVia((f, a) => c.exec(f, a)),
    exec: (f, a, env) => c.exec(f, a, undefined, env),
    spawn: (f, a) => c.spawn(f, a),
  });
  const layout = join(work, "layout");
  writeOciLayout(layout, { layers: [singleFileTar("hello.txt", Buffer.from("hello from berth\n"))], tag: "v1" });
  await registry.push(layout, "v1", "berth/app:v1");
  await registry.push(layout, "v1", `${CACHE_PREFIX}/berth/app:v1`);
  const spawn = (f: string, a: string[]) => c.spawn(f, a);
  mirror = await startRecorder(spawn, `http://${registry.host}`);
  source = await startRecorder(spawn);
  sourceNoFallback = await startRecorder(spawn);
  sourceServerOnly = await startRecorder(spawn);
  // The mirror case as users write it: the source stays the server (containerd's fallback), the
  // ECR pull-through cache is a mirror host whose path carries the cache prefix.
  hostsToml(certsD, source.host, [
    `server = "http://${source.host}"`,
    "",
    `[host."http://${mirror.host}/v2/${CACHE_PREFIX}"]`,
    '  capabilities = ["pull", "resolve"]',
    "  override_path = true",
  ]);
  // The same mirror as the only host: no fallback to the source. containerd 1.6.20 needs a
  // [host] table even then (see the server-only case below), so the mirror is both.
  hostsToml(certsD, sourceNoFallback.host, [
    `server = "http://${mirror.host}/v2/${CACHE_PREFIX}"`,
    'capabilities = ["pull", "resolve"]',
    "override_path = true",
    "",
    `[host."http://${mirror.host}/v2/${CACHE_PREFIX}"]`,
    '  capabilities = ["pull", "resolve"]',
    "  override_path = true",
  ]);
  // Only a server line pointing at the mirror, no [host] table.
  hostsToml(certsD, sourceServerOnly.host, [
    `server = "http://${mirror.host}/v2/${CACHE_PREFIX}"`,
    'capabilities = ["pull", "resolve"]',
    "override_path = true",
  ]);
  cri = criClient(ctd.socket);
});

test.after(async () => {
  cri?.close();
  ctd?.stop();
  await ep?.close();
  if (work) removeDir(work);
});

it("without credentials PullImage is refused (auth is really on)", async () => {
  const r = await pull(`${the().registry.host}/berth/app:v1`);
  assert.not.ok(r.ok, "pulled without credentials");
  assert.match(r.ok ? "" : r.error, "401 Unauthorized");
});

it("the provider's answer, passed as the kubelet passes it (AuthConfig username + password), lets containerd pull from the registry", async () => {
  const { ep: aws, registry: reg, cri: c } = the();
  const image = `${reg.host}/berth/app:v1`;
  const creds = await providerCredentials(aws, image);
  assert.is(creds.username, "AWS");
  assert.is(creds.password, token, "the token from the local ECR endpoint");
  const r = await pull(image, kubeletAuth(creds));
  assert.ok(r.ok, r.ok ? "" : r.error);
  const st = await c.call("ImageService/ImageStatus", { image: { image } });
  assert.ok(st.image?.repo_tags.includes(image), JSON.stringify(st.image));
  assert.match(st.image?.repo_digests.join(" ") ?? "", /@sha256:[0-9a-f]{64}/);
  await c.call("ImageService/RemoveImage", { image: { image } });
});

it("a wrong password from ECR is refused by the registry, and the pull fails", async () => {
  const { ep: aws, registry: reg } = the();
  aws.behaviour = defaultBehaviour(`wrong-${token}`);
  try {
    const image = `${reg.host}/berth/app:v1`;
    const creds = await providerCredentials(aws, image);
    assert.is.not(creds.password, token);
    const r = await pull(image, kubeletAuth(creds));
    assert.not.ok(r.ok, "pulled with a wrong password");
    assert.match(r.ok ? "" : r.error, "401 Unauthorized");
  } finally {
    aws.behaviour = defaultBehaviour(token);
  }
});

it("hosts.toml mirror + --registry-mirror: containerd sends the kubelet's credentials to the mirror, the pull succeeds, and the source registry is never contacted", async () => {
  const { ep: aws, mirror: m, source: s, cri: c } = the();
  const image = `${s.host}/berth/app:v1`;
  const creds = await providerCredentials(aws, image, ["get-credentials", `--registry-mirror=${s.host}=${ECR_MIRROR}`]);
  assert.is(aws.calls.at(-1)?.scope?.region, "us-east-1", "the token is the mirror's (ECR us-east-1)");
  assert.is(creds.password, token);
  m.requests.length = 0;
  s.requests.length = 0;
  const r = await pull(image, kubeletAuth(creds));
  assert.ok(r.ok, r.ok ? "" : r.error);
  await sync(m, s);
  assert.equal(s.requests, [], "the source registry saw a request");
  // containerd asks the mirror without credentials first, gets the registry's Basic challenge, then
  // sends the kubelet's username and password on every request; it names the source in ?ns=.
  assert.is(m.requests[0]?.auth.scheme, "none", JSON.stringify(m.requests[0]));
  const authed = m.requests.filter((q) => withToken(q, token));
  assert.ok(authed.length >= 3, JSON.stringify(m.requests)); // manifest, config, layer
  assert.ok(
    m.requests.every((q) => q.auth.scheme === "none" || withToken(q, token)),
    JSON.stringify(m.requests),
  );
  assert.ok(
    authed.every(
      (q) => q.path.startsWith(`/v2/${CACHE_PREFIX}/berth/app/`) && q.path.includes(`ns=${encodeURIComponent(s.host)}`),
    ),
    JSON.stringify(authed.map((q) => q.path)),
  );
  assert.ok(
    authed.every((q) => q.status === 200),
    JSON.stringify(m.requests),
  );
  const st = await c.call("ImageService/ImageStatus", { image: { image } });
  assert.ok(st.image?.repo_tags.includes(image), "the image is known under the source's name");
  await c.call("ImageService/RemoveImage", { image: { image } });
});

it("containerd 1.6 falls back to the source when the mirror misses (404) or refuses (401), with the same credentials: the source registry sees the ECR token", async () => {
  const { ep: aws, mirror: m, source: s } = the();
  const image = `${s.host}/berth/not-cached:v1`;
  const creds = await providerCredentials(aws, image, ["get-credentials", `--registry-mirror=${s.host}=${ECR_MIRROR}`]);
  m.requests.length = 0;
  s.requests.length = 0;
  const r = await pull(image, kubeletAuth(creds));
  assert.not.ok(r.ok, "the image exists nowhere");
  await sync(m, s);
  assert.ok(
    m.requests.some((q) => q.status === 404 && withToken(q, token)),
    `the mirror answered 404: ${JSON.stringify(m.requests)}`,
  );
  assert.ok(
    s.requests.some((q) => withToken(q, token) && q.path.startsWith("/v2/berth/not-cached/")),
    `the source got the token: ${JSON.stringify(s.requests)}`,
  );

  // A token the mirror refuses (expired, another account's) goes to the source as well.
  aws.behaviour = defaultBehaviour(`expired-${token}`);
  try {
    const cached = `${s.host}/berth/app:v1`;
    const bad = await providerCredentials(aws, cached, [
      "get-credentials",
      `--registry-mirror=${s.host}=${ECR_MIRROR}`,
    ]);
    m.requests.length = 0;
    s.requests.length = 0;
    const refused = await pull(cached, kubeletAuth(bad));
    assert.not.ok(refused.ok);
    await sync(m, s);
    assert.ok(
      m.requests.some((q) => q.status === 401 && withToken(q, bad.password)),
      JSON.stringify(m.requests),
    );
    assert.ok(
      s.requests.some((q) => withToken(q, bad.password)),
      JSON.stringify(s.requests),
    );
  } finally {
    aws.behaviour = defaultBehaviour(token);
  }
});

it("with the mirror as hosts.toml's server (no fallback) the source never sees anything: a cached image pulls, a miss fails at the mirror", async () => {
  const { ep: aws, mirror: m, sourceNoFallback: s, cri: c } = the();
  const args = ["get-credentials", `--registry-mirror=${s.host}=${ECR_MIRROR}`];
  const cached = `${s.host}/berth/app:v1`;
  const missing = `${s.host}/berth/not-cached:v1`;
  m.requests.length = 0;
  const ok = await pull(cached, kubeletAuth(await providerCredentials(aws, cached, args)));
  assert.ok(ok.ok, ok.ok ? "" : ok.error);
  await c.call("ImageService/RemoveImage", { image: { image: cached } });
  const miss = await pull(missing, kubeletAuth(await providerCredentials(aws, missing, args)));
  assert.not.ok(miss.ok);
  await sync(m, s);
  assert.equal(s.requests, []);
  assert.ok(m.requests.some((q) => q.status === 404 && withToken(q, token)));
  assert.ok(m.requests.some((q) => q.status === 200 && withToken(q, token)));
});

it('containerd 1.6.20 ignores a hosts.toml without a [host] table ("invalid `host` tree") and pulls from the source itself, sending it the token', async () => {
  const { ep: aws, mirror: m, sourceServerOnly: s, ctd: c } = the();
  const image = `${s.host}/berth/app:v1`;
  m.requests.length = 0;
  const r = await pull(
    image,
    kubeletAuth(
      await providerCredentials(aws, image, ["get-credentials", `--registry-mirror=${s.host}=${ECR_MIRROR}`]),
    ),
  );
  assert.not.ok(r.ok, "the source refuses the ECR token");
  assert.match(r.ok ? "" : r.error, `pulling from host ${s.host} failed`);
  await sync(m, s);
  assert.equal(m.requests, [], "the mirror was not used");
  assert.ok(
    s.requests.some((q) => withToken(q, token)),
    JSON.stringify(s.requests),
  );
  assert.match(c.log(), 'msg="failed to decode hosts.toml" error="invalid `host` tree"');
});

test.run();
