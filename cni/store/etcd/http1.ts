// A small HTTP/1.1 client (RFC 9112) for etcd's JSON gateway: POST a JSON body, read one answer,
// keep the connection for the next request. node:http and node:https cost a plugin process about
// 6 ms (plain) and 10 ms (TLS) of module loading and first-request set-up, a third of what the etcd
// store adds to a cold ADD; the gateway needs none of what they offer beyond this. node:net is
// loaded anyway, and node:tls only for an https endpoint.
import type { Socket } from "node:net";
import type { SecureContext } from "node:tls";

export type TlsMaterial = { ca?: Buffer; cert?: Buffer; key?: Buffer };

export type HttpAnswer = { status: number; text: string };

export type Connections = {
  /** POSTs body to url; rejects on a connection error or after timeoutMs without a whole answer. */
  post(url: URL, body: string, timeoutMs: number, headers: Record<string, string>): Promise<HttpAnswer>;
  /** Closes every kept connection. */
  close(): void;
};

/** How a response's body ends (RFC 9112 section 6.3). */
type Framing = { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };

type Parsed = { status: number; keepAlive: boolean; framing: Framing; bodyStart: number };

const HEADER_END = "\r\n\r\n";
const MAX_HEADER_BYTES = 64 * 1024;

/** The status line and headers of a response in buf, or undefined while they are incomplete. */
function parseHead(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf(HEADER_END);
  if (end < 0) {
    if (buf.length > MAX_HEADER_BYTES) throw new Error("response headers too large");
    return undefined;
  }
  const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.([01]) (\d{3})/.exec(lines[0] ?? "");
  if (!m) throw new Error(`not an HTTP/1.x response: ${JSON.stringify((lines[0] ?? "").slice(0, 40))}`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers.set(name, headers.has(name) ? `${headers.get(name)}, ${value}` : value);
  }
  const status = Number(m[2]);
  const connection = (headers.get("connection") ?? "").toLowerCase();
  const keepAlive = m[1] === "1" ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  const te = (headers.get("transfer-encoding") ?? "").toLowerCase();
  const cl = headers.get("content-length");
  let framing: Framing;
  if (status === 204 || status === 304) framing = { kind: "length", length: 0 };
  else if (/\bchunked\s*$/.test(te)) framing = { kind: "chunked" };
  else if (cl !== undefined && /^\d+$/.test(cl)) framing = { kind: "length", length: Number(cl) };
  else if (cl !== undefined) throw new Error(`bad Content-Length ${JSON.stringify(cl.slice(0, 20))}`);
  else framing = { kind: "close" };
  return { status, keepAlive: keepAlive && framing.kind !== "close", framing, bodyStart: end + HEADER_END.length };
}

/** The body of a chunked message starting at buf[from], or undefined while it is incomplete. */
function dechunk(buf: Buffer, from: number): Buffer | undefined {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const eol = buf.indexOf("\r\n", at);
    if (eol < 0) return undefined;
    const size = Number.parseInt(buf.subarray(at, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isFinite(size) || size < 0) throw new Error("bad chunk size in response");
    at = eol + 2;
    if (size === 0) {
      // Trailer fields, if any, end with an empty line.
      const trailerEnd = buf.indexOf("\r\n", at) === at ? at : buf.indexOf(HEADER_END, at);
      return trailerEnd < 0 ? undefined : Buffer.concat(parts);
    }
    if (buf.length < at + size + 2) return undefined;
    parts.push(buf.subarray(at, at + size));
    at += size + 2;
  }
}

/** The whole body, once buf holds it (ended: the peer closed the connection). */
function bodyOf(buf: Buffer, p: Parsed, ended: boolean): Buffer | undefined {
  if (p.framing.kind === "length") {
    const end = p.bodyStart + p.framing.length;
    return buf.length >= end ? buf.subarray(p.bodyStart, end) : undefined;
  }
  if (p.framing.kind === "chunked") return dechunk(buf, p.bodyStart);
  return ended ? buf.subarray(p.bodyStart) : undefined;
}

/** A header value that could end the header block is refused rather than sent. */
function headerLine(name: string, value: string): string {
  if (/[\r\n\0]/.test(value)) throw new Error(`refusing a ${name} header value with a line break`);
  return `${name}: ${value}\r\n`;
}

export function createConnections(tlsFiles: TlsMaterial | undefined): Connections {
  const idle = new Map<string, Socket[]>();
  const open = new Set<Socket>();
  let context: SecureContext | undefined;

  function connect(url: URL): Socket {
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const secure = url.protocol === "https:";
    const port = Number(url.port || (secure ? 443 : 80));
    let socket: Socket;
    if (secure) {
      const tls = process.getBuiltinModule("node:tls") as typeof import("node:tls");
      const net = process.getBuiltinModule("node:net") as typeof import("node:net");
      context ??= tls.createSecureContext({ ca: tlsFiles?.ca, cert: tlsFiles?.cert, key: tlsFiles?.key });
      // The server's certificate is checked against the CA and the host (tls.checkServerIdentity,
      // by default); SNI carries a name only, never an address (RFC 6066 section 3).
      socket = tls.connect({ host, port, secureContext: context, servername: net.isIP(host) ? undefined : host });
    } else {
      const net = process.getBuiltinModule("node:net") as typeof import("node:net");
      socket = net.connect({ host, port });
    }
    socket.setNoDelay(true);
    // Errors while a request is under way reach its own listener; one on an idle connection only
    // means it cannot be used again ("close" follows and drops it).
    socket.on("error", () => {});
    open.add(socket);
    socket.once("close", () => {
      open.delete(socket);
      const list = idle.get(url.origin);
      if (list)
        idle.set(
          url.origin,
          list.filter((s) => s !== socket),
        );
    });
    // A kept connection must never hold the process open: it exits when its work is done.
    socket.unref();
    return socket;
  }

  function exchange(
    socket: Socket,
    request: string,
    waitMs: number,
    reused: boolean,
    timeoutMs: number,
  ): Promise<{ answer: HttpAnswer; keep: boolean } | "stale"> {
    return new Promise((done, fail) => {
      let buf: Buffer = Buffer.alloc(0);
      let head: Parsed | undefined;
      let settled = false;
      const finish = (f: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("end", onEnd);
        socket.off("error", onError);
        socket.off("close", onEnd);
        f();
      };
      const tryComplete = (ended: boolean) => {
        try {
          head ??= parseHead(buf);
          if (!head) {
            if (ended) throw new Error("connection closed before an answer");
            return;
          }
          if (head.status >= 100 && head.status < 200) {
            // An interim answer (RFC 9110 section 15.2): the final one follows.
            buf = buf.subarray(head.bodyStart);
            head = undefined;
            tryComplete(ended);
            return;
          }
          const body = bodyOf(buf, head, ended);
          if (!body) {
            if (ended) throw new Error("connection closed in the middle of an answer");
            return;
          }
          const p = head;
          finish(() =>
            done({ answer: { status: p.status, text: body.toString("utf8") }, keep: p.keepAlive && !ended }),
          );
        } catch (e) {
          socket.destroy();
          finish(() => fail(e));
        }
      };
      const onData = (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        tryComplete(false);
      };
      const onEnd = () => {
        // A kept connection the server closed while idle: nothing was received, so nothing was done.
        if (reused && buf.length === 0) return finish(() => done("stale"));
        tryComplete(true);
      };
      const onError = (e: Error) => {
        if (reused && buf.length === 0) return finish(() => done("stale"));
        finish(() => fail(e));
      };
      socket.on("data", onData);
      socket.on("end", onEnd);
      socket.on("close", onEnd);
      socket.on("error", onError);
      // A process starved of CPU runs its timers before the I/O that arrived meanwhile: look at the
      // socket once more (setImmediate runs after the poll phase) before calling it a timeout.
      const timer = setTimeout(
        () =>
          setImmediate(() => {
            if (settled) return;
            socket.destroy();
            finish(() => fail(new Error(`no answer within ${timeoutMs} ms`)));
          }),
        waitMs,
      );
      socket.write(request);
    });
  }

  return {
    async post(url, body, timeoutMs, headers) {
      let head = `POST ${url.pathname}${url.search} HTTP/1.1\r\n${headerLine("Host", url.host)}`;
      for (const [k, v] of Object.entries(headers)) head += headerLine(k, v);
      head += `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: keep-alive\r\n\r\n`;
      const request = head + body;
      const started = Date.now();
      for (;;) {
        const kept = idle.get(url.origin)?.pop();
        const socket = kept && !kept.destroyed ? kept : connect(url);
        const left = Math.max(1, timeoutMs - (Date.now() - started));
        // A retry on a new connection gets what is left of the request's time, not a new timeout.
        const r = await exchange(socket, request, left, socket === kept, timeoutMs);
        if (r === "stale") {
          socket.destroy();
          continue;
        }
        if (r.keep && !socket.destroyed) {
          const list = idle.get(url.origin) ?? [];
          list.push(socket);
          idle.set(url.origin, list);
        } else {
          socket.destroy();
        }
        return r.answer;
      }
    },
    close() {
      for (const s of open) s.destroy();
      open.clear();
      idle.clear();
    },
  };
}
