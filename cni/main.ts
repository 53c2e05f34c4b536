// berth-ipam: a CNI IPAM plugin. The runtime execs it with CNI_* in the environment and the
// network config on stdin; shared/cni's skel does the protocol, cni/commands.ts the work.
import { runCni } from "../shared/cni/dispatch.ts";
import { versionLine } from "../shared/build-info.ts";
import { writeStdout } from "../shared/io.ts";
import { commands } from "./commands.ts";
import { mark } from "./trace.ts";

mark("main");

// Reservations and the store are private to the node's runtime (host-local writes 0600 files).
process.umask(0o077);

if (process.argv.includes("--version")) {
  writeStdout(`${versionLine("berth-ipam")}\n`);
} else {
  runCni(commands, { about: `CNI ${versionLine("berth-ipam")}` }).then((code) => {
    process.exitCode = code;
  });
}
