// End to end with a real registry: Debian's docker-registry (Docker Distribution) on
// 127.0.0.1 with htpasswd auth whose password is what the local ECR endpoint hands out as its
// token. The credentials berth-credential-provider returns must let skopeo read a manifest, and a
// wrong token must not. The registry, its storage and the image are made here and removed after.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decodeResponseStrict } from "../../shared/kubelet/codec.ts";
import { urlsMatch } from "../../shared/kubelet/match.ts";
import { defaultBehaviour, startAwsEndpoint, type AwsEndpoint } from "../helpers/aws-endpoint.ts";
import { CREDENTIAL_PROVIDER, execBinary } from "../helpers/exec.ts";

const TOOLS = { registry: "/usr/bin/docker-registry", skopeo: "/usr/bin/skopeo", htpasswd: "/usr/bin/htpasswd" };
const missing = Object.values(TOOLS).filter((p) => !existsSync(p));
const test = suite("registry: berth-credential-provider against docker-registry + skopeo");

type Run = { code: number; stdout: string; stderr: string };
function sh(file: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        done({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

/** A one-layer OCI image layout written by hand: no network, no other registry. */
function writeOciLayout(dir: string): void {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer): { digest: string; size: number } => {
    const hex = createHash("sha256").update(data).digest("hex");
    writeFileSync(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  // A tar with one file (512-byte header + content padded to 512, then two zero blocks).
  const content = Buffer.from("hello from berth\n");
  const header = Buffer.alloc(512);
  header.write("hello.txt", 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${content.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(body);
  const layer = put(Buffer.concat([header, body, Buffer.alloc(1024)]));
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: "amd64",
        os: "linux",
        config: {},
        rootfs: { type: "layers", diff_ids: [layer.digest] },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: [{ mediaType: "application/vnd.oci.image.layer.v1.tar", ...layer }],
      }),
    ),
  );
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          ...manifest,
          annotations: { "org.opencontainers.image.ref.name": "v1" },
        },
      ],
    }),
  );
}

if (missing.length > 0 && process.env.CI !== "true") {
  test.skip(`needs ${missing.join(", ")} (apt-get install docker-registry skopeo apache2-utils)`, () => {});
} else if (missing.length > 0) {
  test("peers are installed (CI=true: .ci/apt-packages lists docker-registry, skopeo, apache2-utils)", () => {
    assert.unreachable(`missing ${missing.join(", ")}`);
  });
} else {
  const password = `ecr-${randomBytes(12).toString("hex")}`;
  let tmp = "";
  let registry: ChildProcess | undefined;
  let registryLog = "";
  let host = "";
  let ep: AwsEndpoint;
  const skopeoEnv = () => ({ HOME: tmp, XDG_RUNTIME_DIR: tmp, XDG_CONFIG_HOME: tmp });

  test.before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "berth-registry-"));
    ep = await startAwsEndpoint(defaultBehaviour(password));
    const ht = await sh(TOOLS.htpasswd, ["-Bbc", join(tmp, "htpasswd"), "AWS", password]);
    assert.is(ht.code, 0, ht.stderr);
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    writeFileSync(
      join(tmp, "config.yml"),
      [
        "version: 0.1",
        "log:",
        "  level: error",
        "storage:",
        "  filesystem:",
        `    rootdirectory: ${join(tmp, "data")}`,
        "http:",
        `  addr: ${host}`,
        "auth:",
        "  htpasswd:",
        "    realm: berth-test",
        `    path: ${join(tmp, "htpasswd")}`,
        "",
      ].join("\n"),
    );
    registry = spawn(TOOLS.registry, ["serve", join(tmp, "config.yml")], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: "/usr/bin:/bin" },
    });
    registry.stdout?.on("data", (d: Buffer) => (registryLog += d.toString()));
    registry.stderr?.on("data", (d: Buffer) => (registryLog += d.toString()));
    // Ready when /v2/ answers 401 (auth is on).
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      try {
        const r = await fetch(`http://${host}/v2/`);
        ready = r.status === 401;
      } catch {
        await new Promise((d) => setTimeout(d, 100));
      }
    }
    assert.ok(ready, `registry did not start: ${registryLog}`);
    const layout = join(tmp, "layout");
    writeOciLayout(layout);
    writeFileSync(join(tmp, "policy.json"), JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
    const push = await sh(
      TOOLS.skopeo,
      [
        "--policy",
        join(tmp, "policy.json"),
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        `AWS:${password}`,
        `oci:${layout}:v1`,
        `docker://${host}/berth/app:v1`,
      ],
      skopeoEnv(),
    );
    assert.is(push.code, 0, `skopeo copy: ${push.stderr}`);
  });

  test.after(async () => {
    if (registry && registry.exitCode === null) {
      const exited = new Promise((d) => registry?.once("exit", d));
      registry.kill("SIGTERM");
      await exited;
    }
    await ep?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function credentialsFor(
    image: string,
    args: string[] = ["get-credentials"],
  ): Promise<{ username: string; password: string }> {
    const r = await execBinary(CREDENTIAL_PROVIDER, {
      args,
      env: ep.env({ AWS_REGION: "us-west-2" }),
      stdin: JSON.stringify({
        apiVersion: "credentialprovider.kubelet.k8s.io/v1",
        kind: "CredentialProviderRequest",
        image,
      }),
    });
    assert.is(r.code, 0, r.stderr);
    const d = decodeResponseStrict(r.stdout, "credentialprovider.kubelet.k8s.io/v1");
    if (!d.ok) throw new Error(d.error);
    const auth = d.value.auth ?? {};
    // The kubelet picks auth entries whose key matches the image with its own glob rules.
    const key = Object.keys(auth).find((k) => {
      const m = urlsMatch(k, image);
      return m.ok && m.matched;
    });
    assert.ok(key, `no auth key matches ${image}: ${Object.keys(auth).join(", ")}`);
    return auth[key as string] as { username: string; password: string };
  }

  const inspect = (creds: string[]) =>
    sh(TOOLS.skopeo, ["inspect", "--tls-verify=false", ...creds, `docker://${host}/berth/app:v1`], skopeoEnv());

  test("without credentials the registry refuses (auth is really on)", async () => {
    const r = await inspect(["--no-creds"]);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /unauthorized|authentication required/i);
  });

  test("credentials from the provider (token from the local ECR endpoint) let skopeo read the manifest", async () => {
    const c = await credentialsFor(`${host}/berth/app`);
    assert.is(c.username, "AWS");
    const r = await inspect(["--creds", `${c.username}:${c.password}`]);
    assert.is(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { Digest?: string; Layers?: string[] };
    assert.match(info.Digest ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.is(info.Layers?.length, 1);
  });

  test("through the mirror map: the registry gets the mirror's (ECR) credentials", async () => {
    const c = await credentialsFor(`${host}/berth/app`, [
      "get-credentials",
      `--registry-mirror=${host}=123456789012.dkr.ecr.us-east-1.amazonaws.com/cache`,
    ]);
    assert.is(ep.calls.at(-1)?.scope?.region, "us-east-1");
    const r = await inspect(["--creds", `${c.username}:${c.password}`]);
    assert.is(r.code, 0, r.stderr);
  });

  test("a wrong token from ECR does not get in", async () => {
    ep.behaviour = defaultBehaviour(`wrong-${password}`);
    try {
      const c = await credentialsFor(`${host}/berth/app`);
      assert.is.not(c.password, password);
      const r = await inspect(["--creds", `${c.username}:${c.password}`]);
      assert.is.not(r.code, 0);
      assert.match(r.stderr, /unauthorized|authentication required|invalid username\/password/i);
    } finally {
      ep.behaviour = defaultBehaviour(password);
    }
  });
}

test.run();
