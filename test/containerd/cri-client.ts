// A small CRI client standing in for the kubelet: unary runtime.v1 calls over containerd's unix
// socket, with the subset of the API in cri-runtime-v1.proto. Test-only: @grpc/grpc-js and
// @grpc/proto-loader are devDependencies and never reach the shipped binaries.
import { credentials, Client, Metadata, type ServiceError } from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { join } from "node:path";

const PROTO = join(import.meta.dirname, "cri-runtime-v1.proto");
// keepCase: field names as in the .proto; enums as their names; int64 as strings.
const definition = loadSync(PROTO, { keepCase: true, enums: String, longs: String, defaults: true });

export type DNSConfig = { servers?: string[]; searches?: string[]; options?: string[] };
export type PortMapping = {
  protocol?: "TCP" | "UDP" | "SCTP";
  container_port: number;
  host_port: number;
  host_ip?: string;
};
export type NamespaceMode = "POD" | "CONTAINER" | "NODE" | "TARGET";
export type PodSandboxMetadata = { name: string; uid: string; namespace: string; attempt?: number };
export type PodSandboxConfig = {
  metadata: PodSandboxMetadata;
  hostname?: string;
  log_directory?: string;
  dns_config?: DNSConfig;
  port_mappings?: PortMapping[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroup_parent?: string;
    security_context?: { namespace_options?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } };
  };
};
export type SandboxState = "SANDBOX_READY" | "SANDBOX_NOTREADY";
export type PodSandboxStatus = {
  id: string;
  metadata: PodSandboxMetadata;
  state: SandboxState;
  created_at: string;
  network: { ip: string; additional_ips: { ip: string }[] } | null;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtime_handler: string;
};
export type PodSandbox = Omit<PodSandboxStatus, "network">;
/** runtime.v1.AuthConfig: the kubelet fills it from its keyring entry (see credentials.test.ts). */
export type AuthConfig = {
  username?: string;
  password?: string;
  auth?: string;
  server_address?: string;
  identity_token?: string;
  registry_token?: string;
};
export type RuntimeCondition = { type: string; status: boolean; reason: string; message: string };
export type Image = { id: string; repo_tags: string[]; repo_digests: string[]; size: string };

type Calls = {
  "RuntimeService/Version": [
    { version: string },
    { version: string; runtime_name: string; runtime_version: string; runtime_api_version: string },
  ];
  "RuntimeService/Status": [
    { verbose?: boolean },
    { status: { conditions: RuntimeCondition[] } | null; info: Record<string, string> },
  ];
  "RuntimeService/RunPodSandbox": [{ config: PodSandboxConfig; runtime_handler?: string }, { pod_sandbox_id: string }];
  "RuntimeService/StopPodSandbox": [{ pod_sandbox_id: string }, Record<string, never>];
  "RuntimeService/RemovePodSandbox": [{ pod_sandbox_id: string }, Record<string, never>];
  "RuntimeService/PodSandboxStatus": [
    { pod_sandbox_id: string; verbose?: boolean },
    { status: PodSandboxStatus | null; info: Record<string, string> },
  ];
  "RuntimeService/ListPodSandbox": [
    { filter?: { id?: string; state?: { state: SandboxState }; label_selector?: Record<string, string> } },
    { items: PodSandbox[] },
  ];
  "ImageService/ImageStatus": [{ image: { image: string }; verbose?: boolean }, { image: Image | null }];
  "ImageService/PullImage": [
    { image: { image: string }; auth?: AuthConfig; sandbox_config?: PodSandboxConfig },
    { image_ref: string },
  ];
  "ImageService/RemoveImage": [{ image: { image: string } }, Record<string, never>];
};
export type Method = keyof Calls;

type Codec = { requestSerialize: (v: unknown) => Buffer; responseDeserialize: (b: Buffer) => unknown; path: string };

function codec(method: Method): Codec {
  const [service, name] = method.split("/") as [string, string];
  const svc = definition[`runtime.v1.${service}`] as unknown as Record<string, Codec> | undefined;
  const m = svc?.[name];
  if (!m) throw new Error(`${method} is not in ${PROTO}`);
  return m;
}

/** A CRI error as the kubelet sees it: the gRPC status code and containerd's message. */
export type CriError = Error & { code: number; details: string };

function criError(method: string, e: ServiceError): CriError {
  return Object.assign(new Error(`${method}: ${e.details || e.message} (grpc code ${e.code})`), {
    code: e.code,
    details: e.details,
  });
}

export function isCriError(e: unknown): e is CriError {
  return e instanceof Error && typeof (e as Partial<CriError>).code === "number";
}

export type Cri = {
  call<M extends Method>(method: M, req: Calls[M][0], timeoutMs?: number): Promise<Calls[M][1]>;
  close(): void;
};

/** A client for the CRI socket at `socket` (a unix socket path). */
export function criClient(socket: string): Cri {
  const client = new Client(`unix://${socket}`, credentials.createInsecure());
  return {
    call(method, req, timeoutMs = 60_000) {
      const c = codec(method);
      return new Promise((done, fail) => {
        client.makeUnaryRequest(
          c.path,
          c.requestSerialize,
          c.responseDeserialize,
          req,
          new Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err, res) => {
            if (err) fail(criError(method, err));
            else done(res as Calls[typeof method][1]);
          },
        );
      });
    },
    close: () => client.close(),
  };
}
