// End to end with a real registry: Debian's docker-registry (Docker Distribution) on
// 127.0.0.1 with htpasswd auth whose password is what the local ECR endpoint hands out as its
// token. The credentials berth-credential-provider returns must let skopeo read a manifest, and a
// wrong token must not. The registry, its storage and the image are made here and removed after.
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { defaultBehaviour, startAwsEndpoint, type AwsEndpoint } from "../helpers/aws-endpoint.ts";
import { providerCredentials } from "../helpers/kubelet-credentials.ts";
import { singleFileTar, writeOciLayout } from "../helpers/oci-image.ts";
import { execHere, freePort, REGISTRY_TOOLS, startRegistry, type Registry } from "../helpers/registry.ts";

const missing = Object.values(REGISTRY_TOOLS).filter((p) => !existsSync(p));
const test = suite("registry: berth-credential-provider against docker-registry + skopeo");

if (missing.length > 0 && process.env.CI !== "true") {
  test.skip(`needs ${missing.join(", ")} (apt-get install docker-registry skopeo apache2-utils)`, () => {});
} else if (missing.length > 0) {
  test("peers are installed (CI=true: .ci/apt-packages lists docker-registry, skopeo, apache2-utils)", () => {
    assert.unreachable(`missing ${missing.join(", ")}`);
  });
} else {
  const password = `ecr-${randomBytes(12).toString("hex")}`;
  let tmp = "";
  let registry: Registry | undefined;
  let host = "";
  let ep: AwsEndpoint;
  const skopeoEnv = () => ({ HOME: tmp, XDG_RUNTIME_DIR: tmp, XDG_CONFIG_HOME: tmp });

  test.before(async () => {
    tmp = mkdtempSync(join(tmpdir(), "berth-registry-"));
    ep = await startAwsEndpoint(defaultBehaviour(password));
    registry = await startRegistry({ dir: join(tmp, "registry"), user: "AWS", password, port: await freePort() });
    host = registry.host;
    const layout = join(tmp, "layout");
    writeOciLayout(layout, { layers: [singleFileTar("hello.txt", Buffer.from("hello from berth\n"))], tag: "v1" });
    await registry.push(layout, "v1", "berth/app:v1");
  });

  test.after(async () => {
    await registry?.close();
    await ep?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const inspect = (creds: string[]) =>
    execHere(
      REGISTRY_TOOLS.skopeo,
      ["inspect", "--tls-verify=false", ...creds, `docker://${host}/berth/app:v1`],
      skopeoEnv(),
    );

  test("without credentials the registry refuses (auth is really on)", async () => {
    const r = await inspect(["--no-creds"]);
    assert.is.not(r.code, 0);
    assert.match(r.stderr, /unauthorized|authentication required/i);
  });

  test("credentials from the provider (token from the local ECR endpoint) let skopeo read the manifest", async () => {
    const c = await providerCredentials(ep, `${host}/berth/app`);
    assert.is(c.username, "AWS");
    const r = await inspect(["--creds", `${c.username}:${c.password}`]);
    assert.is(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { Digest?: string; Layers?: string[] };
    assert.match(info.Digest ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.is(info.Layers?.length, 1);
  });

  test("through the mirror map: the registry gets the mirror's (ECR) credentials", async () => {
    const c = await providerCredentials(ep, `${host}/berth/app`, [
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
      const c = await providerCredentials(ep, `${host}/berth/app`);
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
