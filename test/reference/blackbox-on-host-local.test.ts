// The black-box suite run against Debian's reference host-local instead of berth-ipam: proof that
// the suite encodes the spec and the reference's behaviour, not just our own reading. Tests of
// intended differences assert host-local's behaviour here, and berth-only tests are skipped.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { suite } from "uvu";

const HOST_LOCAL = "/usr/lib/cni/host-local";
// Not helpers/peers.ts's inCI(): importing it would load helpers/exec.ts, which fixes the plugin
// under test, before BERTH_IPAM is set below (static imports run first).
const inCI = !["", "0", "false"].includes((process.env.CI ?? "").toLowerCase());

if (!existsSync(HOST_LOCAL)) {
  const s = suite("reference host-local");
  const why = `${HOST_LOCAL} missing (Debian package containernetworking-plugins)`;
  if (inCI)
    s(why, () => {
      throw new Error(why);
    });
  else s.skip(why);
  s.run();
} else {
  // Set before the helpers are first imported: they read the plugin under test once.
  process.env.BERTH_IPAM = HOST_LOCAL;
  const dir = join(import.meta.dirname, "..", "blackbox");
  for (const f of readdirSync(dir)
    .filter((n) => n.endsWith(".test.ts"))
    .sort()) {
    await import(pathToFileURL(join(dir, f)).href);
  }
}
