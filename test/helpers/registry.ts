// Debian's docker-registry (Docker Distribution) on a loopback address with htpasswd auth, and
// skopeo to push images made here into it. The registry stage runs it on the machine's
// 127.0.0.1; the containerd stage runs it inside the namespaces containerd runs in (the `spawn`
// and `exec` options), so containerd's pulls never leave them.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { execBinary } from "./exec.ts";

export const REGISTRY_TOOLS = {
  registry: "/usr/bin/docker-registry",
  skopeo: "/usr/bin/skopeo",
  htpasswd: "/usr/bin/htpasswd",
};

export type Run = { code: number; stdout: string; stderr: string };
export type Exec = (file: string, args: string[], env?: Record<string, string>) => Promise<Run>;
export type Spawn = (file: string, args: string[]) => ChildProcess;

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

export const execHere: Exec = (file, args, env = {}) => execBinary(file, { args, env, timeoutMs: 120_000 });

const spawnHere: Spawn = (file, args) => spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: { PATH } });

/** A free TCP port on 127.0.0.1 of this process's network namespace. */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => done(port));
    });
  });
}

/** The same, in the network namespace `exec` runs in (asks a Node there). */
export async function freePortVia(exec: Exec): Promise<number> {
  const r = await exec(process.execPath, [
    "-e",
    "const s=require('node:net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ]);
  const port = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isInteger(port) || port <= 0) throw new Error(`no free port: ${r.stdout} ${r.stderr}`);
  return port;
}

export type RegistryOptions = {
  /** A directory of the test's: config, htpasswd and storage go here. */
  dir: string;
  user: string;
  password: string;
  port: number;
  /** How to run programs (default: here); for another namespace, wrap them in nsenter. */
  exec?: Exec;
  spawn?: Spawn;
};

export type Registry = {
  /** `127.0.0.1:<port>` */
  host: string;
  log(): string;
  /** skopeo copy of an OCI layout's tag to `<host>/<repo>:<tag>` with the registry's credentials. */
  push(layoutDir: string, layoutTag: string, repoAndTag: string): Promise<void>;
  close(): Promise<void>;
};

export async function startRegistry(opts: RegistryOptions): Promise<Registry> {
  const exec = opts.exec ?? execHere;
  const run = opts.spawn ?? spawnHere;
  mkdirSync(opts.dir, { recursive: true });
  const htpasswd = join(opts.dir, "htpasswd");
  const ht = await exec(REGISTRY_TOOLS.htpasswd, ["-Bbc", htpasswd, opts.user, opts.password]);
  if (ht.code !== 0) throw new Error(`htpasswd: ${ht.stderr}`);
  const host = `127.0.0.1:${opts.port}`;
  const config = join(opts.dir, "config.yml");
  writeFileSync(
    config,
    [
      "version: 0.1",
      "log:",
      "  level: error",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${join(opts.dir, "data")}`,
      "http:",
      `  addr: ${host}`,
      "auth:",
      "  htpasswd:",
      "    realm: berth-test",
      `    path: ${htpasswd}`,
      "",
    ].join("\n"),
  );
  const child = run(REGISTRY_TOOLS.registry, ["serve", config]);
  let log = "";
  child.stdout?.on("data", (d: Buffer) => (log += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
  // Ready when /v2/ answers 401 (auth is on); curl-free: ask through `exec` in the registry's netns.
  let ready = false;
  for (let i = 0; i < 100 && !ready; i++) {
    const r = await exec(process.execPath, [
      "-e",
      `fetch("http://${host}/v2/").then(r=>process.exit(r.status===401?0:2),()=>process.exit(1))`,
    ]);
    ready = r.code === 0;
    if (!ready) await new Promise((d) => setTimeout(d, 100));
  }
  if (!ready) throw new Error(`registry did not start: ${log}`);
  const policy = join(opts.dir, "policy.json");
  writeFileSync(policy, JSON.stringify({ default: [{ type: "insecureAcceptAnything" }] }));
  const skopeoEnv = { HOME: opts.dir, XDG_RUNTIME_DIR: opts.dir, XDG_CONFIG_HOME: opts.dir };
  return {
    host,
    log: () => log,
    async push(layoutDir, layoutTag, repoAndTag) {
      const r = await exec(
        REGISTRY_TOOLS.skopeo,
        [
          "--policy",
          policy,
          "copy",
          "--dest-tls-verify=false",
          "--dest-creds",
          `${opts.user}:${opts.password}`,
          `oci:${layoutDir}:${layoutTag}`,
          `docker://${host}/${repoAndTag}`,
        ],
        skopeoEnv,
      );
      if (r.code !== 0) throw new Error(`skopeo copy to ${host}/${repoAndTag}: ${r.stderr}`);
    },
    async close() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((d) => child.once("exit", d));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
