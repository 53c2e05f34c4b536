// A local stand-in for ECR, ECR Public and STS on 127.0.0.1, speaking what the AWS SDK sends:
// awsJson 1.1 for GetAuthorizationToken (X-Amz-Target), awsQuery for STS. It reads the SigV4
// Authorization header's credential scope (access key, region, service) of every call and refuses
// a call signed for the wrong service, so tests prove region and service choices on the wire.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { LOOPBACK_CERT, LOOPBACK_KEY } from "./loopback-tls.ts";
import type { AddressInfo, Socket } from "node:net";

export const ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
export const ECR_PUBLIC_TARGET = "SpencerFrontendService.GetAuthorizationToken";

export type Scope = { accessKeyId: string; date: string; region: string; service: string };

export type Call = {
  api: "ecr" | "ecr-public" | "sts" | "unknown";
  /** undefined when unsigned (AssumeRoleWithWebIdentity) */
  scope: Scope | undefined;
  target: string | undefined;
  /** STS form fields */
  form: Record<string, string>;
  body: string;
  headers: IncomingMessage["headers"];
  /** Date.now() when the request's headers arrived */
  receivedAt: number;
  /** Date.now() when the exchange ended: the answer sent, or the client gone (a hang it gave up on) */
  endedAt: number | undefined;
  /** the answer was sent in full (false: the client closed the connection first) */
  answered: boolean;
  /** epoch seconds of the token's expiresAt, when a token was sent with one */
  expiresAt: number | undefined;
  /** settles with `endedAt` once the exchange has ended (the client's exit may be seen first) */
  ended: Promise<number>;
};

export type TokenReply =
  | {
      kind: "token";
      username?: string;
      password: string /** seconds from now; null = no expiresAt */;
      expiresIn?: number | null;
    }
  /** any body, sent as is (content type: the JSON one unless given) */
  | { kind: "raw"; status: number; body: string; contentType?: string }
  | { kind: "error"; status: number; type: string; message: string }
  | { kind: "hang" };

export type StsReply =
  | { kind: "credentials"; accessKeyId: string; secretAccessKey: string; sessionToken: string }
  | { kind: "error"; status: number; code: string; message: string }
  | { kind: "raw"; status: number; body: string; contentType?: string };

export type Behaviour = { ecr: TokenReply; ecrPublic: TokenReply; sts: StsReply };

export type AwsEndpoint = {
  url: string;
  calls: Call[];
  behaviour: Behaviour;
  /** env pointing every SDK client here, with static node credentials */
  env: (extra?: Record<string, string>) => Record<string, string>;
  close: () => Promise<void>;
};

export const NODE_ACCESS_KEY = "AKIDNODE0000EXAMPLE";
export const NODE_SECRET_KEY = "node-secret-key-do-not-print-0123456789";

const SCOPE = /Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request/;

export function parseScope(authorization: string | undefined): Scope | undefined {
  const m = SCOPE.exec(authorization ?? "");
  if (!m) return undefined;
  return { accessKeyId: m[1] as string, date: m[2] as string, region: m[3] as string, service: m[4] as string };
}

/** What the endpoint hands out by default: none of it may ever reach stderr. */
export const DEFAULT_SECRETS: readonly string[] = [
  NODE_SECRET_KEY,
  "ecr-password-0123456789",
  "public-ecr-password-0123456789",
  "role-secret-do-not-print-987654321",
  "role-session-token-do-not-print-555",
];

export function defaultBehaviour(password = "ecr-password-0123456789"): Behaviour {
  return {
    ecr: { kind: "token", password, expiresIn: 12 * 3600 },
    ecrPublic: { kind: "token", password: `public-${password}`, expiresIn: 12 * 3600 },
    sts: {
      kind: "credentials",
      accessKeyId: "ASIAROLE0000EXAMPLE",
      secretAccessKey: "role-secret-do-not-print-987654321",
      sessionToken: "role-session-token-do-not-print-555",
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((done) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => done(Buffer.concat(chunks).toString("utf8")));
  });
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  errorType?: string,
  contentType = "application/x-amz-json-1.1",
): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const headers: Record<string, string> = { "content-type": contentType, "x-amzn-requestid": "req-1" };
  if (errorType) headers["x-amzn-errortype"] = errorType;
  res.writeHead(status, headers);
  res.end(text);
}

function tokenReply(res: ServerResponse, reply: TokenReply, publicShape: boolean, call: Call): void {
  switch (reply.kind) {
    case "hang":
      return; // never answer: the caller's timeout must fire
    case "raw":
      sendJson(res, reply.status, reply.body, undefined, reply.contentType);
      return;
    case "error":
      sendJson(res, reply.status, { __type: reply.type, message: reply.message }, reply.type);
      return;
    case "token": {
      const data: Record<string, unknown> = {
        authorizationToken: Buffer.from(`${reply.username ?? "AWS"}:${reply.password}`).toString("base64"),
      };
      const expiresIn = reply.expiresIn === undefined ? 12 * 3600 : reply.expiresIn;
      if (expiresIn !== null) {
        call.expiresAt = Math.floor(Date.now() / 1000) + expiresIn;
        data.expiresAt = call.expiresAt;
      }
      if (!publicShape) data.proxyEndpoint = "https://123456789012.dkr.ecr.us-west-2.amazonaws.com";
      sendJson(res, 200, { authorizationData: publicShape ? data : [data] });
      return;
    }
  }
}

function stsReply(res: ServerResponse, action: string, reply: StsReply): void {
  if (reply.kind === "raw") {
    res.writeHead(reply.status, { "content-type": reply.contentType ?? "text/xml" });
    res.end(reply.body);
    return;
  }
  if (reply.kind === "error") {
    res.writeHead(reply.status, { "content-type": "text/xml" });
    res.end(
      `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${reply.code}</Code><Message>${reply.message}</Message></Error><RequestId>req-1</RequestId></ErrorResponse>`,
    );
    return;
  }
  const exp = new Date(Date.now() + 3600_000).toISOString();
  res.writeHead(200, { "content-type": "text/xml" });
  res.end(
    `<${action}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><${action}Result>` +
      `<Credentials><AccessKeyId>${reply.accessKeyId}</AccessKeyId><SecretAccessKey>${reply.secretAccessKey}</SecretAccessKey>` +
      `<SessionToken>${reply.sessionToken}</SessionToken><Expiration>${exp}</Expiration></Credentials>` +
      `<AssumedRoleUser><AssumedRoleId>AROA:ecr</AssumedRoleId><Arn>arn:aws:sts::123456789012:assumed-role/r/ecr</Arn></AssumedRoleUser>` +
      `</${action}Result><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></${action}Response>`,
  );
}

/** tls: serve https with the loopback test certificate (trust it with NODE_EXTRA_CA_CERTS). */
export async function startAwsEndpoint(
  behaviour: Behaviour = defaultBehaviour(),
  opts: { tls?: boolean } = {},
): Promise<AwsEndpoint> {
  const calls: Call[] = [];
  const state = { behaviour };
  const handler: RequestListener = async (req, res) => {
    const receivedAt = Date.now();
    const body = await readBody(req);
    const scope = parseScope(req.headers.authorization);
    const target = typeof req.headers["x-amz-target"] === "string" ? req.headers["x-amz-target"] : undefined;
    const form = Object.fromEntries(new URLSearchParams(body));
    const api: Call["api"] =
      target === ECR_TARGET ? "ecr" : target === ECR_PUBLIC_TARGET ? "ecr-public" : form.Action ? "sts" : "unknown";
    let end: (at: number) => void = () => {};
    const call: Call = {
      api,
      scope,
      target,
      form,
      body,
      headers: req.headers,
      receivedAt,
      endedAt: undefined,
      answered: false,
      expiresAt: undefined,
      ended: new Promise((done) => (end = done)),
    };
    calls.push(call);
    res.on("close", () => {
      call.endedAt = Date.now();
      call.answered = res.writableFinished;
      end(call.endedAt);
    });
    if (req.method !== "POST" || req.url !== "/")
      return sendJson(res, 404, { __type: "UnknownOperationException", message: `${req.method} ${req.url}` });
    if (api === "ecr" || api === "ecr-public") {
      const wantService = api;
      if (!scope || scope.service !== wantService) {
        return sendJson(
          res,
          403,
          {
            __type: "InvalidSignatureException",
            message: `credential scope service ${scope?.service ?? "(unsigned)"}, expected ${wantService}`,
          },
          "InvalidSignatureException",
        );
      }
      if (api === "ecr-public" && scope.region !== "us-east-1") {
        return sendJson(
          res,
          403,
          { __type: "InvalidSignatureException", message: `ecr-public signed for ${scope.region}, expected us-east-1` },
          "InvalidSignatureException",
        );
      }
      if (req.headers["content-type"] !== "application/x-amz-json-1.1")
        return sendJson(res, 400, { __type: "SerializationException", message: "content-type" });
      return tokenReply(
        res,
        api === "ecr" ? state.behaviour.ecr : state.behaviour.ecrPublic,
        api === "ecr-public",
        call,
      );
    }
    if (api === "sts") {
      if (form.Action === "AssumeRole" && scope?.service !== "sts") {
        return stsReply(res, "AssumeRole", {
          kind: "error",
          status: 403,
          code: "InvalidClientTokenId",
          message: "AssumeRole must be signed for sts",
        });
      }
      if (form.Action !== "AssumeRole" && form.Action !== "AssumeRoleWithWebIdentity") {
        return stsReply(res, "x", { kind: "error", status: 400, code: "InvalidAction", message: String(form.Action) });
      }
      return stsReply(res, form.Action, state.behaviour.sts);
    }
    return sendJson(res, 400, { __type: "UnknownOperationException", message: String(target) });
  };
  const server: Server = opts.tls
    ? createTlsServer({ key: LOOPBACK_KEY, cert: LOOPBACK_CERT }, handler)
    : createServer(handler);
  const sockets = new Set<Socket>();
  server.on("connection", (sock: Socket) => {
    sockets.add(sock);
    sock.on("close", () => sockets.delete(sock));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const url = `${opts.tls ? "https" : "http"}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    calls,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(b: Behaviour) {
      state.behaviour = b;
    },
    env: (extra = {}) => ({
      AWS_ACCESS_KEY_ID: NODE_ACCESS_KEY,
      AWS_SECRET_ACCESS_KEY: NODE_SECRET_KEY,
      AWS_ENDPOINT_URL_ECR: url,
      AWS_ENDPOINT_URL_ECR_PUBLIC: url,
      AWS_ENDPOINT_URL_STS: url,
      AWS_EC2_METADATA_DISABLED: "true",
      // The developer's own ~/.aws must not change what a test sees.
      AWS_CONFIG_FILE: "/nonexistent/berth-test/config",
      AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/berth-test/credentials",
      ...extra,
    }),
    close: () =>
      new Promise<void>((done) => {
        for (const s of sockets) s.destroy(); // hanging requests included
        server.close(() => done());
      }),
  };
}
