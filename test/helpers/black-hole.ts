// An endpoint that has gone dark: a loopback listener that accepts every connection and never
// answers, as a black-holed region behind a load balancer or a proxy does. It records when each
// connection arrived and when the client gave up on it, so tests count attempts and benchmarks
// read the times off the endpoint's side.
import { createServer, type AddressInfo, type Socket } from "node:net";

export type Attempt = { connectedAt: number; closedAt: number | undefined };

export type BlackHole = { url: string; attempts: Attempt[]; close: () => Promise<void> };

export async function startBlackHole(): Promise<BlackHole> {
  const attempts: Attempt[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    const a: Attempt = { connectedAt: Date.now(), closedAt: undefined };
    attempts.push(a);
    sockets.add(sock);
    sock.on("data", () => {}); // read the request, answer nothing
    sock.on("error", () => {});
    sock.on("close", () => {
      a.closedAt = Date.now();
      sockets.delete(sock);
    });
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    attempts,
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };
}
