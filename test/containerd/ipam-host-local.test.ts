// The containerd stage's IPAM half against Debian's reference host-local: proof that the suite
// encodes containerd's and the reference's behaviour, not just our own reading of it.
import { join } from "node:path";
import { needExecutable } from "../helpers/peers.ts";
import { REFERENCE_DIR } from "../helpers/netns.ts";
import { defineIpamSuite, sandboxPreflight } from "./ipam-suite.ts";

const HOST_LOCAL = join(REFERENCE_DIR, "host-local");

defineIpamSuite({
  label: `${HOST_LOCAL} (the reference)`,
  plugin: HOST_LOCAL,
  pluginRequirement: needExecutable(HOST_LOCAL, "containernetworking-plugins"),
  octet: 210,
  envLimit: await sandboxPreflight(),
});
