// The etcd store's HTTP/1.1 client (cni/store/etcd/http1.ts) against a loopback TCP server that
// answers with bytes the test writes: each framing of RFC 9112 section 6.3, interim answers,
// kept connections, a kept connection the server closed, and timeouts.
import { createServer, type Server, type Socket } from "node:net";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createConnections } from "../../cni/store/etcd/http1.ts";

type Peer = { url: URL; requests: string[]; connections: number; close(): Promise<void> };

/** A server that hands each request's raw text to answer and writes back what it returns. */
async function peer(answer: (request: string, socket: Socket, n: number) => string | undefined): Promise<Peer> {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buf = "";
    socket.on("data", (d) => {
      buf += d.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const length = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + length) return;
        const request = buf.slice(0, end + 4 + length);
        buf = buf.slice(request.length);
        requests.push(request);
        const out = answer(request, socket, requests.length);
        if (out !== undefined) socket.write(out);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return {
    url: new URL(`http://127.0.0.1:${address.port}/v3/kv/range`),
    requests,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const ok = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;

const test = suite("etcd store: the HTTP/1.1 client");

test("a POST carries Host, the headers given, Content-Length and the body; Content-Length framing", async () => {
  const p = await peer(() => ok('{"kvs":[]}'));
  const c = createConnections(undefined);
  try {
    const a = await c.post(p.url, '{"key":"eA=="}', 1000, { "Content-Type": "application/json", Authorization: "tok" });
    assert.equal(a, { status: 200, text: '{"kvs":[]}' });
    const [head = "", body] = (p.requests[0] ?? "").split("\r\n\r\n");
    const lines = head.split("\r\n");
    assert.is(lines[0], "POST /v3/kv/range HTTP/1.1");
    assert.ok(lines.includes(`Host: ${p.url.host}`), head);
    assert.ok(lines.includes("Authorization: tok"), head);
    assert.ok(lines.includes("Content-Length: 14"), head);
    assert.is(body, '{"key":"eA=="}');
  } finally {
    c.close();
    await p.close();
  }
});

test("a chunked answer, split across writes, with a chunk extension and a trailer, is joined", async () => {
  const body = JSON.stringify({
    kvs: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: "x".repeat(100) })),
  });
  const p = await peer((_req, socket) => {
    socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    const parts = [body.slice(0, 1000), body.slice(1000, 3000), body.slice(3000)];
    setTimeout(() => {
      for (const [i, part] of parts.entries())
        socket.write(`${part.length.toString(16)}${i === 1 ? ";x=y" : ""}\r\n${part}\r\n`);
      setTimeout(() => socket.write("0\r\nX-Trailer: 1\r\n\r\n"), 5);
    }, 5);
    return undefined;
  });
  const c = createConnections(undefined);
  try {
    const a = await c.post(p.url, "{}", 1000, {});
    assert.is(a.status, 200);
    assert.is(a.text, body);
  } finally {
    c.close();
    await p.close();
  }
});

test("an interim 100 answer is skipped; the final answer counts", async () => {
  const p = await peer(() => `HTTP/1.1 100 Continue\r\n\r\n${ok('{"a":1}')}`);
  const c = createConnections(undefined);
  try {
    assert.equal(await c.post(p.url, "{}", 1000, {}), { status: 200, text: '{"a":1}' });
  } finally {
    c.close();
    await p.close();
  }
});

test("an answer framed by the connection's close is read to the end, and the connection not kept", async () => {
  const p = await peer((_req, socket) => {
    socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n{"error":"etcdserver: leader changed","code":14}');
    return undefined;
  });
  const c = createConnections(undefined);
  try {
    const a = await c.post(p.url, "{}", 1000, {});
    assert.is(a.status, 503);
    assert.is(a.text, '{"error":"etcdserver: leader changed","code":14}');
    await c.post(p.url, "{}", 1000, {});
    assert.is(p.connections, 2, "a connection closed by the server is not reused");
  } finally {
    c.close();
    await p.close();
  }
});

test("one connection serves requests one after another (keep-alive)", async () => {
  const p = await peer((_req, _s, n) => ok(`{"n":${n}}`));
  const c = createConnections(undefined);
  try {
    for (let i = 1; i <= 3; i++) assert.is((await c.post(p.url, "{}", 1000, {})).text, `{"n":${i}}`);
    assert.is(p.connections, 1);
  } finally {
    c.close();
    await p.close();
  }
});

test("concurrent requests get a connection each; neither answer goes to the other", async () => {
  const p = await peer((req) => {
    const body = req.slice(req.indexOf("\r\n\r\n") + 4);
    return ok(body);
  });
  const c = createConnections(undefined);
  try {
    const [a, b] = await Promise.all([c.post(p.url, '{"a":1}', 1000, {}), c.post(p.url, '{"b":2}', 1000, {})]);
    assert.is(a.text, '{"a":1}');
    assert.is(b.text, '{"b":2}');
    assert.is(p.connections, 2);
  } finally {
    c.close();
    await p.close();
  }
});

test("a kept connection the server closed while idle: the request goes out on a new one", async () => {
  let first: Socket | undefined;
  const p = await peer((_req, socket, n) => {
    first ??= socket;
    return ok(`{"n":${n}}`);
  });
  const c = createConnections(undefined);
  try {
    assert.is((await c.post(p.url, "{}", 1000, {})).text, '{"n":1}');
    first?.destroy();
    await new Promise((r) => setTimeout(r, 20));
    assert.is((await c.post(p.url, "{}", 1000, {})).text, '{"n":2}');
    assert.is(p.connections, 2);
    assert.is(p.requests.length, 2, "the request was sent once, on the new connection");
  } finally {
    c.close();
    await p.close();
  }
});

test("no answer within the timeout: an error saying so; a half answer the same", async () => {
  const silent = await peer(() => undefined);
  const half = await peer(() => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{");
  const c = createConnections(undefined);
  try {
    for (const p of [silent, half]) {
      const t0 = Date.now();
      try {
        await c.post(p.url, "{}", 150, {});
        assert.unreachable("answered");
      } catch (e) {
        assert.match(String(e), /no answer within 150 ms/);
        assert.ok(Date.now() - t0 >= 140, "not before the timeout");
      }
    }
  } finally {
    c.close();
    await silent.close();
    await half.close();
  }
});

test("a server that closes mid-answer, or answers what is not HTTP: a clear error", async () => {
  const cut = await peer((_req, socket) => {
    socket.end("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{");
    return undefined;
  });
  const garbage = await peer((_req, socket) => {
    socket.end("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    return undefined;
  });
  const c = createConnections(undefined);
  try {
    await c.post(cut.url, "{}", 1000, {}).then(
      () => assert.unreachable("answered"),
      (e) => assert.match(String(e), /closed in the middle of an answer/),
    );
    await c.post(garbage.url, "{}", 1000, {}).then(
      () => assert.unreachable("answered"),
      (e) => assert.match(String(e), /not an HTTP\/1\.x response/),
    );
  } finally {
    c.close();
    await cut.close();
    await garbage.close();
  }
});

test("a refused connection is the system's error, naming the address", async () => {
  const p = await peer(() => undefined);
  const url = p.url;
  await p.close();
  const c = createConnections(undefined);
  try {
    await c.post(url, "{}", 1000, {}).then(
      () => assert.unreachable("answered"),
      (e) => assert.match(String(e), new RegExp(`ECONNREFUSED 127\\.0\\.0\\.1:${url.port}`)),
    );
  } finally {
    c.close();
  }
});

test("a header value with a line break is refused before anything is sent", async () => {
  const p = await peer(() => ok("{}"));
  const c = createConnections(undefined);
  try {
    await c.post(p.url, "{}", 1000, { Authorization: "tok\r\nX-Evil: 1" }).then(
      () => assert.unreachable("sent"),
      (e) => assert.match(String(e), /line break/),
    );
    assert.is(p.requests.length, 0);
  } finally {
    c.close();
    await p.close();
  }
});

test("kept connections never hold the process open", async () => {
  const p = await peer(() => ok("{}"));
  try {
    const { spawn } = await import("node:child_process");
    const script = `import { createConnections } from ${JSON.stringify(new URL("../../cni/store/etcd/http1.ts", import.meta.url).href)};
const c = createConnections(undefined);
await c.post(new URL(${JSON.stringify(p.url.href)}), "{}", 1000, {});
console.log("answered");`;
    // Not spawnSync: the server answering the child runs in this process. A child held open by its
    // connection is killed at the timeout, and then has no exit status.
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { timeout: 10_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const [status, signal] = await new Promise<[number | null, string | null]>((r) =>
      child.on("close", (code, sig) => r([code, sig])),
    );
    assert.is(stdout.trim(), "answered", stderr);
    assert.is(status, 0, `exited on its own (signal ${signal})`);
  } finally {
    await p.close();
  }
});

test.run();
