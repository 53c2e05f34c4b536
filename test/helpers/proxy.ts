// Forward proxies on loopback for the tests that check where a client goes: one that relays
// (plain requests and CONNECT tunnels, TLS end to end), one that only records the target of each
// request or CONNECT and refuses it, so no call ever leaves the machine and the AWS host a client
// would have reached is seen without DNS or a network.
import { createServer, request as httpRequest, type Server } from "node:http";
import { connect, type AddressInfo, type Socket } from "node:net";

export type LoopbackProxy = {
  url: string;
  /** `CONNECT host:port` or `METHOD absolute-url`, in arrival order */
  seen: string[];
  close: () => Promise<void>;
};

/** Tunnelled sockets leave the HTTP server's bookkeeping: every socket is tracked to close them all. */
function closer(server: Server, extra: Set<Socket> = new Set()): () => Promise<void> {
  const sockets = new Set<Socket>();
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  return () =>
    new Promise<void>((done) => {
      for (const s of sockets) s.destroy();
      for (const s of extra) s.destroy();
      server.close(() => done());
    });
}

function listen(server: Server, seen: string[], close: () => Promise<void>): Promise<LoopbackProxy> {
  return new Promise((done) =>
    server.listen(0, "127.0.0.1", () =>
      done({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close }),
    ),
  );
}

/** A proxy that records each target and refuses it (403): the client's call fails at once. */
export function startRefusingProxy(): Promise<LoopbackProxy> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.writeHead(403, { "content-length": "0" }).end();
  });
  server.on("connect", (req, client: Socket) => {
    seen.push(`CONNECT ${req.url}`);
    client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  });
  return listen(server, seen, closer(server));
}

/** A forward proxy that relays every request and CONNECT tunnel, recording each. */
export function startRelayProxy(): Promise<LoopbackProxy> {
  const seen: string[] = [];
  const upstreams = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url ?? "/");
    const up = httpRequest(
      { host: target.hostname, port: target.port, path: target.pathname, method: req.method, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  // HTTPS through the proxy: a CONNECT tunnel.
  server.on("connect", (req, client, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = (req.url ?? "").split(":");
    const up = connect(Number(port), host ?? "127.0.0.1", () => {
      upstreams.add(up);
      up.on("close", () => upstreams.delete(up));
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  return listen(server, seen, closer(server, upstreams));
}
