import { runCni } from "../shared/cni/dispatch.ts";
import { versionLine } from "../shared/build-info.ts";
import { commands } from "./commands.ts";

process.exitCode = await runCni(commands, { about: `CNI ${versionLine("berth-ipam")}` });
