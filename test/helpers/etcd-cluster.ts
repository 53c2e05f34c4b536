// Real etcd clusters for tests and benchmarks: Debian's etcd-server (3.4) members on loopback
// ports found free at run time, data in a temp dir, every member killed and the dir removed at
// the end, also when a test fails or the process dies (an exit hook). TLS material is made with
// openssl per cluster; auth is set up with etcdctl the way the README tells an operator to.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket, type AddressInfo } from "node:net";
import { request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { executable, type Requirement } from "./peers.ts";

export const ETCD = "/usr/bin/etcd";
export const ETCDCTL = "/usr/bin/etcdctl";
export const OPENSSL = "/usr/bin/openssl";

export function needEtcd(): Requirement[] {
  return [
    { what: `${ETCD} (Debian package etcd-server)`, ok: executable(ETCD) },
    { what: `${ETCDCTL} (Debian package etcd-client)`, ok: executable(ETCDCTL) },
  ];
}

export type TlsMaterial = {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  /** A client certificate without a CommonName (the 3.4 gateway with auth rejects one that has it). */
  clientCert: string;
  clientKey: string;
};

export type Member = {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  proc: ChildProcess | undefined;
};

export type ClusterOptions = {
  size?: number;
  tls?: boolean;
  /** With tls: require client certificates (--client-cert-auth). */
  clientCertAuth?: boolean;
  /** Where the cluster's temp dir goes (default the OS temp dir). */
  root?: string;
};

export type Cluster = {
  dir: string;
  members: Member[];
  endpoints: string[];
  tls: TlsMaterial | undefined;
  /** Root's password once enableAuth has run (etcdctl then logs in as root), and a file holding it. */
  rootPassword: string | undefined;
  rootPasswordFile: string | undefined;
  stop(): Promise<void>;
  kill(i: number): Promise<void>;
  start(i: number): Promise<void>;
  /** Stops member i without killing it (SIGSTOP), or lets it go on (SIGCONT). */
  pause(i: number, on: boolean): void;
  leader(): Promise<number>;
  waitReady(timeoutMs?: number): Promise<void>;
  etcdctl(args: string[], opts?: { input?: string; endpoints?: string[] }): Promise<string>;
  /** A gateway POST to member i, answered body as JSON (throws on a non-200 answer). */
  post(i: number, path: string, body: unknown, token?: string): Promise<Record<string, unknown>>;
};

const live = new Set<Cluster>();
process.on("exit", () => {
  for (const c of live) {
    for (const m of c.members) {
      try {
        if (m.proc?.pid) process.kill(m.proc.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    rmSync(c.dir, { recursive: true, force: true });
  }
});

/** Free loopback ports, all held at once so none is handed out twice, then released. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = createServer();
    await new Promise<void>((done) => s.listen(0, "127.0.0.1", () => done()));
    servers.push(s);
    ports.push((s.address() as AddressInfo).port);
  }
  await Promise.all(servers.map((s) => new Promise((done) => s.close(done))));
  return ports;
}

function run(file: string, args: string[], input?: string, env?: Record<string, string>): Promise<string> {
  return new Promise((done, fail) => {
    const child = execFile(file, args, { env: { PATH: "/usr/bin:/bin", ...env }, timeout: 30_000 }, (e, out, err) => {
      if (e) fail(new Error(`${file} ${args.join(" ")}: ${err || e.message}`));
      else done(out);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** A CA, a server certificate for 127.0.0.1, and a CN-less client certificate, made with openssl. */
export async function makeTls(dir: string): Promise<TlsMaterial> {
  mkdirSync(dir, { recursive: true });
  const p = (n: string) => join(dir, n);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run(
    OPENSSL,
    ["req", "-x509", ...ec, "-keyout", p("ca-key.pem"), "-out", p("ca.pem"), "-days", "2"].concat([
      "-subj",
      "/CN=berth-test-ca",
    ]),
  );
  const sign = async (name: string, subj: string, ext: string) => {
    await run(OPENSSL, ["req", ...ec, "-keyout", p(`${name}-key.pem`), "-out", p(`${name}.csr`), "-subj", subj]);
    writeFileSync(p(`${name}.ext`), ext);
    await run(OPENSSL, [
      "x509",
      "-req",
      "-in",
      p(`${name}.csr`),
      "-CA",
      p("ca.pem"),
      "-CAkey",
      p("ca-key.pem"),
      "-CAcreateserial",
      "-out",
      p(`${name}.pem`),
      "-days",
      "2",
      "-extfile",
      p(`${name}.ext`),
    ]);
  };
  await sign("server", "/O=berth-test-server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  await sign("client", "/O=berth-test-client", "extendedKeyUsage=clientAuth\n");
  return {
    dir,
    ca: p("ca.pem"),
    serverCert: p("server.pem"),
    serverKey: p("server-key.pem"),
    clientCert: p("client.pem"),
    clientKey: p("client-key.pem"),
  };
}

export async function startCluster(opts: ClusterOptions = {}): Promise<Cluster> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryStart(opts);
    } catch (e) {
      // Another process on this shared machine may have taken a port between probe and bind.
      if (attempt >= 2) throw e;
    }
  }
}

async function tryStart(opts: ClusterOptions): Promise<Cluster> {
  const size = opts.size ?? 3;
  const dir = mkdtempSync(join(opts.root ?? tmpdir(), "berth-etcd-"));
  const tls = opts.tls ? await makeTls(join(dir, "tls")) : undefined;
  const scheme = tls ? "https" : "http";
  const ports = await freePorts(size * 2);
  const members: Member[] = Array.from({ length: size }, (_, i) => ({
    name: `m${i}`,
    clientUrl: `${scheme}://127.0.0.1:${ports[2 * i]}`,
    peerUrl: `http://127.0.0.1:${ports[2 * i + 1]}`,
    dataDir: join(dir, `m${i}`),
    proc: undefined,
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
  const token = `berth-${process.pid}-${Date.now()}`;
  const agent = tls
    ? new HttpsAgent({
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.clientCert),
        key: readFileSync(tls.clientKey),
        keepAlive: false,
      })
    : undefined;

  const cluster: Cluster = {
    dir,
    members,
    endpoints: members.map((m) => m.clientUrl),
    tls,
    rootPassword: undefined,
    rootPasswordFile: undefined,
    async stop() {
      await Promise.all(members.map((_, i) => cluster.kill(i)));
      live.delete(cluster);
      rmSync(dir, { recursive: true, force: true });
    },
    async kill(i) {
      const m = members[i]!;
      const p = m.proc;
      if (!p || p.exitCode !== null || p.signalCode !== null) return;
      const gone = new Promise((done) => p.once("exit", done));
      p.kill("SIGKILL");
      await gone;
      m.proc = undefined;
    },
    async start(i) {
      const m = members[i]!;
      if (m.proc) return;
      const fresh = !existsSync(m.dataDir);
      const args = [
        "--name",
        m.name,
        "--data-dir",
        m.dataDir,
        "--listen-client-urls",
        m.clientUrl,
        "--advertise-client-urls",
        m.clientUrl,
        "--listen-peer-urls",
        m.peerUrl,
        "--initial-advertise-peer-urls",
        m.peerUrl,
        "--initial-cluster",
        initialCluster,
        "--initial-cluster-state",
        fresh ? "new" : "existing",
        "--initial-cluster-token",
        token,
        "--logger",
        "zap",
        "--log-level",
        "error",
      ];
      if (tls) {
        args.push("--cert-file", tls.serverCert, "--key-file", tls.serverKey, "--trusted-ca-file", tls.ca);
        if (opts.clientCertAuth) args.push("--client-cert-auth");
      }
      const log = openSync(join(dir, `${m.name}.log`), "a");
      const proc = spawn(ETCD, args, { stdio: ["ignore", log, log], env: { PATH: "/usr/bin:/bin" } });
      closeSync(log);
      m.proc = proc;
      proc.once("exit", () => {
        if (m.proc === proc) m.proc = undefined;
      });
    },
    pause(i, on) {
      const pid = members[i]!.proc?.pid;
      if (pid) process.kill(pid, on ? "SIGSTOP" : "SIGCONT");
    },
    async leader() {
      const ids = new Map<string, number>();
      let leader: string | undefined;
      for (const [i, m] of members.entries()) {
        if (!m.proc) continue;
        try {
          const st = await cluster.post(i, "/v3/maintenance/status", {});
          const header = st.header as { member_id: string };
          ids.set(header.member_id, i);
          leader = st.leader as string;
        } catch {
          // a member that does not answer is not the leader we can kill
        }
      }
      const at = leader !== undefined ? ids.get(leader) : undefined;
      if (at === undefined) throw new Error("no leader among the running members");
      return at;
    },
    async waitReady(timeoutMs = 20_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        try {
          // A linearizable read through every running member: each has joined and there is a leader.
          for (const [i, m] of members.entries()) if (m.proc) await cluster.post(i, "/v3/kv/range", { key: "AA==" });
          return;
        } catch (e) {
          if (Date.now() > until)
            throw new Error(`etcd cluster not ready after ${timeoutMs} ms: ${(e as Error).message}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    },
    async etcdctl(args, o = {}) {
      const flags = [`--endpoints=${(o.endpoints ?? cluster.endpoints).join(",")}`, "--command-timeout=10s"];
      if (tls) flags.push(`--cacert=${tls.ca}`, `--cert=${tls.clientCert}`, `--key=${tls.clientKey}`);
      if (cluster.rootPassword) flags.push(`--user=root:${cluster.rootPassword}`);
      return run(ETCDCTL, [...flags, ...args], o.input, { ETCDCTL_API: "3" });
    },
    post(i, path, body, tok) {
      const url = new URL(path, members[i]!.clientUrl);
      const payload = JSON.stringify(body);
      return new Promise((done, fail) => {
        const headers: Record<string, string | number> = {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(payload),
        };
        if (tok) headers.authorization = tok;
        const o = { method: "POST", headers, agent, timeout: 3000 };
        const req = (tls ? httpsRequest : httpRequest)(url, o, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (d: Buffer) => chunks.push(d));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString();
            if (res.statusCode !== 200) fail(new Error(`${url}: HTTP ${res.statusCode} ${text}`));
            else done(JSON.parse(text) as Record<string, unknown>);
          });
        });
        req.on("timeout", () => req.destroy(new Error(`${url}: timeout`)));
        req.on("error", fail);
        req.end(payload);
      });
    },
  };
  live.add(cluster);
  try {
    for (let i = 0; i < size; i++) await cluster.start(i);
    await cluster.waitReady();
  } catch (e) {
    const logs = members.map((m) => {
      try {
        return `${m.name}: ${readFileSync(join(dir, `${m.name}.log`), "utf8").slice(-600)}`;
      } catch {
        return `${m.name}: no log`;
      }
    });
    await cluster.stop();
    throw new Error(`${(e as Error).message}\n${logs.join("\n")}`);
  }
  return cluster;
}

export type AuthSetup = { username: string; password: string; passwordFile: string; prefix: string };

/**
 * Turns on etcd auth the way the README says: a root user, and one user whose role may read and
 * write only under the prefix. Returns that user's credentials (the password also in a file).
 */
export async function enableAuth(c: Cluster, username: string, prefix: string): Promise<AuthSetup> {
  const rootPassword = `root-${Math.random().toString(36).slice(2)}`;
  const password = `pw-${Math.random().toString(36).slice(2)}-${Date.now()}`;
  await c.etcdctl(["user", "add", "root", "--interactive=false"], { input: `${rootPassword}\n` });
  await c.etcdctl(["user", "grant-role", "root", "root"]);
  await c.etcdctl(["role", "add", username]);
  await c.etcdctl(["role", "grant-permission", username, "--prefix=true", "readwrite", `${prefix}/`]);
  await c.etcdctl(["user", "add", username, "--interactive=false"], { input: `${password}\n` });
  await c.etcdctl(["user", "grant-role", username, username]);
  await c.etcdctl(["auth", "enable"]);
  c.rootPassword = rootPassword;
  c.rootPasswordFile = join(c.dir, "root.password");
  writeFileSync(c.rootPasswordFile, `${rootPassword}\n`, { mode: 0o600 });
  const passwordFile = join(c.dir, `${username}.password`);
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  return { username, password, passwordFile, prefix };
}

export type DelayProxy = { url: string; setDelay(ms: number): void; close(): Promise<void> };

/**
 * A TCP proxy on loopback in front of one member that holds every chunk for `ms` in each
 * direction: an etcd that answers slowly. ms = Infinity swallows everything (a hung member).
 */
export async function delayProxy(target: string, ms: number): Promise<DelayProxy> {
  const t = new URL(target);
  let delay = ms;
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void) => {
    if (delay === Number.POSITIVE_INFINITY) return;
    const h = setTimeout(() => {
      timers.delete(h);
      fn();
    }, delay);
    timers.add(h);
  };
  const server = createServer((client) => {
    const upstream = connect(Number(t.port), t.hostname);
    sockets.add(client);
    sockets.add(upstream);
    client.on("data", (d) => later(() => upstream.write(d)));
    upstream.on("data", (d) => later(() => client.write(d)));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", () => done()));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${t.protocol}//127.0.0.1:${port}`,
    setDelay(n) {
      delay = n;
    },
    async close() {
      for (const h of timers) clearTimeout(h);
      for (const s of sockets) s.destroy();
      await new Promise((done) => server.close(done));
    },
  };
}
