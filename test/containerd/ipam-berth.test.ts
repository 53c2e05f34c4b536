// The containerd stage's IPAM half against the plugin under test (berth-ipam unless BERTH_IPAM).
import { IPAM_PLUGIN } from "../helpers/exec.ts";
import { needPluginUnderTest } from "../helpers/peers.ts";
import { defineIpamSuite, sandboxPreflight } from "./ipam-suite.ts";

defineIpamSuite({
  label: IPAM_PLUGIN,
  plugin: IPAM_PLUGIN,
  pluginRequirement: needPluginUnderTest(),
  octet: 200,
  envLimit: await sandboxPreflight(),
});
