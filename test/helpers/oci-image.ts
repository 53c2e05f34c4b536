// Images made here, never pulled: an OCI image layout written by hand (for skopeo and
// `ctr images import`), and the layers that go in it (a one-file tar, or a busybox-static rootfs).
// Shared by the podman, registry and containerd stages.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BUSYBOX = "/bin/busybox";

/** The OCI platform architecture of this machine (amd64, arm64). */
export const OCI_ARCH = process.arch === "x64" ? "amd64" : process.arch;

/** An uncompressed tar holding one regular file (512-byte header, padded body, two zero blocks). */
export function singleFileTar(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${content.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  content.copy(body);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/** Tar (uncompressed) of a directory's contents. */
export function tarDirectory(dir: string): Buffer {
  const r = spawnSync("/usr/bin/tar", ["-C", dir, "-c", "."], { maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`tar -C ${dir}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** A busybox-static rootfs (the binary as /bin/busybox and one symlink per applet), as a tar. */
export function busyboxRootfsTar(workDir: string, applets: string[]): Buffer {
  const bin = join(workDir, "bin");
  mkdirSync(bin, { recursive: true });
  const cp = spawnSync("/usr/bin/cp", [BUSYBOX, join(bin, "busybox")]);
  if (cp.status !== 0) throw new Error(`cp ${BUSYBOX}: ${cp.stderr.toString()}`);
  for (const app of applets) symlinkSync("busybox", join(bin, app));
  return tarDirectory(workDir);
}

export type LayoutOptions = {
  layers: Buffer[];
  /** The image config's `config` object (Entrypoint, Cmd, Env...). */
  config?: Record<string, unknown>;
  /** `org.opencontainers.image.ref.name` of the one manifest (skopeo's `oci:<dir>:<tag>`). */
  tag: string;
  /** `io.containerd.image.name`: the full name `ctr images import` gives the image. */
  name?: string;
};

export type Layout = { manifestDigest: string };

/** A one-manifest OCI image layout in `dir` (created). */
export function writeOciLayout(dir: string, opts: LayoutOptions): Layout {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  const put = (data: Buffer): { digest: string; size: number } => {
    const hex = createHash("sha256").update(data).digest("hex");
    writeFileSync(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layers = opts.layers.map(put);
  const config = put(
    Buffer.from(
      JSON.stringify({
        architecture: OCI_ARCH,
        os: "linux",
        config: opts.config ?? {},
        rootfs: { type: "layers", diff_ids: layers.map((l) => l.digest) },
      }),
    ),
  );
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        config: { mediaType: "application/vnd.oci.image.config.v1+json", ...config },
        layers: layers.map((l) => ({ mediaType: "application/vnd.oci.image.layer.v1.tar", ...l })),
      }),
    ),
  );
  const annotations: Record<string, string> = { "org.opencontainers.image.ref.name": opts.tag };
  if (opts.name) annotations["io.containerd.image.name"] = opts.name;
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", ...manifest, annotations }],
    }),
  );
  return { manifestDigest: manifest.digest };
}
