// A recording HTTP front for a registry, run as its own program so it can live in another
// network namespace:  node http-recorder.ts [upstream-origin]
// It listens on 127.0.0.1 (port 0), prints {"port":N} on its first stdout line, then one JSON line
// per request: method, path (with query) and what the Authorization header carried. Secrets stay
// out of the record: a Basic header gives the user name and the SHA-256 of the password, a Bearer
// header the SHA-256 of the token. With an upstream it forwards every request there (a proxy in
// front of a real registry); without one it plays a registry that refuses everything with a Basic
// challenge, as a registry that does not know these credentials would.
import { createHash } from "node:crypto";
import { createServer, request } from "node:http";
import type { ChildProcess } from "node:child_process";
import type { AddressInfo } from "node:net";

export type AuthSeen =
  | { scheme: "none" }
  | { scheme: "basic"; user: string; passwordSha256: string }
  | { scheme: "bearer"; tokenSha256: string }
  | { scheme: "other" };
export type RecordedRequest = { method: string; path: string; auth: AuthSeen; status: number };

export const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex");

export function authSeen(header: string | undefined): AuthSeen {
  if (!header) return { scheme: "none" };
  const [scheme = "", value = ""] = header.split(" ", 2);
  if (scheme.toLowerCase() === "basic") {
    const text = Buffer.from(value, "base64").toString("utf8");
    const colon = text.indexOf(":");
    return { scheme: "basic", user: text.slice(0, colon), passwordSha256: sha256(text.slice(colon + 1)) };
  }
  if (scheme.toLowerCase() === "bearer") return { scheme: "bearer", tokenSha256: sha256(value) };
  return { scheme: "other" };
}

function main(upstream: string | undefined): void {
  const server = createServer((req, res) => {
    const record = (status: number) =>
      process.stdout.write(
        `${JSON.stringify({ method: req.method ?? "", path: req.url ?? "", auth: authSeen(req.headers.authorization), status })}\n`,
      );
    if (!upstream) {
      req.resume();
      res.writeHead(401, {
        "content-type": "application/json",
        "www-authenticate": 'Basic realm="berth-test-source"',
        "docker-distribution-api-version": "registry/2.0",
      });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
      record(401);
      return;
    }
    const target = new URL(req.url ?? "/", upstream);
    const fwd = request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      record(up.statusCode ?? 502);
    });
    fwd.on("error", (e) => {
      res.writeHead(502);
      res.end(String(e));
      record(502);
    });
    req.pipe(fwd);
  });
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}

if (import.meta.main) main(process.argv[2]);

export type Recorder = {
  /** `127.0.0.1:<port>` */
  host: string;
  requests: RecordedRequest[];
  /**
   * Resolves once every request answered so far is in `requests`: sends a marker request (through
   * `fetchVia`, which must run in the recorder's network namespace) and waits for its record.
   */
  sync(fetchVia: (url: string) => Promise<unknown>): Promise<void>;
};

/**
 * Starts this file as a program through `spawn` (e.g. inside containerd's namespaces) and
 * collects its records. It is stopped with whatever stops what `spawn` started.
 */
export function startRecorder(
  spawn: (file: string, args: string[]) => ChildProcess,
  upstream?: string,
): Promise<Recorder> {
  const child = spawn(process.execPath, [import.meta.filename, ...(upstream ? [upstream] : [])]);
  const requests: RecordedRequest[] = [];
  let marks = 0;
  let host = "";
  const sync = async (fetchVia: (url: string) => Promise<unknown>): Promise<void> => {
    const path = `/berth-recorder-sync/${++marks}`;
    await fetchVia(`http://${host}${path}`);
    for (let i = 0; i < 200; i++) {
      const at = requests.findIndex((r) => r.path === path);
      if (at >= 0) {
        requests.splice(at, 1);
        return;
      }
      await new Promise((d) => setTimeout(d, 25));
    }
    throw new Error(`recorder ${host} did not log its sync request`);
  };
  return new Promise((done, fail) => {
    let buf = "";
    let err = "";
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      if (!host) fail(new Error(`recorder exited ${code}: ${err}`));
    });
    child.stdout?.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = JSON.parse(buf.slice(0, nl)) as { port?: number } & RecordedRequest;
        buf = buf.slice(nl + 1);
        if (line.port !== undefined) {
          host = `127.0.0.1:${line.port}`;
          done({ host, requests, sync });
        } else requests.push(line);
      }
    });
  });
}
