// `berth-ipam validate --conf FILE`: the config parsed exactly as ADD parses it (the skel's checks,
// then the ipam section), and what ADD would use: range sets, gateways, excluded addresses,
// routes, the store's place, the audit log. A config ADD refuses gives ADD's message and CNI code.
import { join } from "node:path";
import type { Route } from "../../shared/cni/result.ts";
import { asJsonObject } from "../../shared/json.ts";
import { parseLogConfig } from "../audit-log.ts";
import { formatCidr, formatIp } from "../ip.ts";
import type { RangeSet } from "../range-set.ts";
import { DB_FILE } from "../store/sqlite.ts";
import { fields, json } from "./output.ts";
import { ipamConfigOf, requestFromFile } from "./target.ts";

const holeText = (s: RangeSet) =>
  s.holes.map((h) => {
    const lo = formatIp({ family: s.family, value: h.lo });
    return h.lo === h.hi ? lo : `${lo}-${formatIp({ family: s.family, value: h.hi })}`;
  });
const routeText = (r: Route) => {
  const extra = (["mtu", "advmss", "priority", "table", "scope"] as const)
    .filter((k) => r[k] !== undefined)
    .map((k) => `${k} ${r[k]}`);
  return [r.dst, r.gw ? `via ${r.gw}` : "", ...extra].filter((x) => x !== "").join(" ");
};

export function validate(file: string, network: string | undefined, asJson: boolean): string {
  const req = requestFromFile(file, network);
  const conf = ipamConfigOf(req);
  const logSection = asJsonObject(req.config.ipam)?.log;
  const log = logSection === undefined || logSection === null ? undefined : parseLogConfig(logSection);
  const sets = conf.rangeSets.map((s) => ({
    rangeSet: s.key,
    ranges: s.ranges.map((r) => ({
      subnet: formatCidr(r.subnet),
      rangeStart: formatIp(r.rangeStart),
      rangeEnd: formatIp(r.rangeEnd),
      gateway: formatIp(r.gateway),
    })),
    excluded: holeText(s),
    size:
      s.ranges.reduce((n, r) => n + r.rangeEnd.value - r.rangeStart.value + 1n, 0n) -
      s.holes.reduce((n, h) => n + h.hi - h.lo + 1n, 0n),
  }));
  const store = join(conf.dataDir, req.name, DB_FILE);
  if (asJson) {
    return json({
      network: req.name,
      cniVersion: req.version,
      rangeSets: sets,
      routes: conf.routes,
      dataDir: conf.dataDir,
      store,
      resolvConf: conf.resolvConf ?? null,
      log: log === undefined ? null : log.ok ? log.value : { error: log.error },
    });
  }
  const pairs: [string, string][] = [
    ["network", `${req.name} (cniVersion ${req.version})`],
    ["store", store],
  ];
  for (const [i, s] of sets.entries()) {
    pairs.push([`range set ${i}`, `${s.rangeSet} (${s.size} addresses to hand out)`]);
    for (const r of s.ranges) pairs.push(["  range", `${r.subnet} ${r.rangeStart}-${r.rangeEnd} gateway ${r.gateway}`]);
    pairs.push(["  never handed out", s.excluded.length ? s.excluded.join(", ") : "-"]);
  }
  pairs.push(["routes", conf.routes.length ? conf.routes.map(routeText).join(", ") : "-"]);
  pairs.push(["resolvConf", conf.resolvConf ?? "-"]);
  const logText = !log
    ? "off"
    : log.ok
      ? `${log.value.file} (level ${log.value.level}, rotated above ${log.value.maxBytes} bytes)`
      : `unusable, nothing would be logged: ${log.error}`;
  pairs.push(["audit log", logText]);
  return `${file}: valid\n${fields(pairs)}`;
}
