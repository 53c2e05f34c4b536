// berth-ipam: a CNI IPAM plugin. The runtime execs it with CNI_* in the environment and the
// network config on stdin; shared/cni's skel does the protocol, cni/commands.ts the work.
// A person running it with arguments and no CNI_COMMAND gets the operator CLI (cni/cli/), which
// is loaded only then: the CNI path never loads yargs or the CLI's code. The audit log module is
// loaded only for a config that has `ipam.log`.
import { runCni, type Invocation } from "../shared/cni/dispatch.ts";
import { versionLine } from "../shared/build-info.ts";
import { writeStdout } from "../shared/io.ts";
import { asJsonObject } from "../shared/json.ts";
import { commands } from "./commands.ts";
import { committedReleases } from "./with-store.ts";
import { mark } from "./trace.ts";

mark("main");

// Reservations and the store are private to the node's runtime (host-local writes 0600 files).
process.umask(0o077);

const HINT = "Operator commands (list, show, usage, release, gc, verify, validate, recover): berth-ipam --help";

async function audit(inv: Invocation): Promise<void> {
  const log = asJsonObject(inv.config?.ipam)?.log;
  if (log === undefined || log === null) return;
  (await import("./audit-log.ts")).writeAuditLog(inv, committedReleases);
}

const argv = process.argv.slice(2);
if (process.argv.includes("--version")) {
  writeStdout(`${versionLine("berth-ipam")}\n`);
} else if (!process.env.CNI_COMMAND && argv.length > 0) {
  import("./cli/main.ts")
    .then((cli) => cli.runCli(argv))
    .then((code) => {
      process.exitCode = code;
    });
} else {
  runCni(commands, { about: `CNI ${versionLine("berth-ipam")}`, hint: HINT, onDone: audit }).then((code) => {
    process.exitCode = code;
  });
}
