// The bad network configs of the black-box bad-input suite, shared with the operator CLI's
// `validate` test, which must answer each with exactly ADD's message and code.
import type { JsonObject } from "../../shared/json.ts";
import { netconf } from "./cni.ts";

/** Stdin that is not a JSON object: code 6. */
export const decodeCases: [string, string | Buffer][] = [
  ["truncated JSON", '{"cniVersion":"1.0.0","name":"testnet"'],
  ["not JSON at all", "hello"],
  ["empty stdin", ""],
  ["binary garbage", Buffer.from([0xff, 0xfe, 0x00, 0x01])],
  ["a top-level JSON array", "[1,2]"],
];

/** An ipam section host-local refuses too (berth 7, host-local 999 or 6). */
export const configCases: [string, Record<string, unknown>][] = [
  ["subnet with a /33 prefix", { subnet: "10.1.2.0/33" }],
  ["subnet with three octets", { subnet: "10.1.2/24" }],
  ["subnet that is a word", { subnet: "foo" }],
  ["subnet that is a number", { subnet: 5 }],
  ["ranges that is a string", { ranges: "10.1.2.0/24" }],
  ["a range set that is an object", { ranges: [{ subnet: "10.1.2.0/24" }] }],
  ["an empty range set", { ranges: [[]] }],
  ["rangeStart that is not an IP", { ranges: [[{ subnet: "10.1.3.0/24", rangeStart: "10.1.3.x" }]] }],
  ["gateway that is not an IP", { ranges: [[{ subnet: "10.1.3.0/24", gateway: "gw" }]] }],
  ["routes that is an object", { subnet: "10.1.2.0/24", routes: { dst: "0.0.0.0/0" } }],
  ["a route without dst", { subnet: "10.1.2.0/24", routes: [{ gw: "10.1.2.1" }] }],
  ["a route with an invalid dst", { subnet: "10.1.2.0/24", routes: [{ dst: "0.0.0.0" }] }],
];

/** Keys only berth reads: code 7. */
export const berthOnlyConfig: [string, Record<string, unknown>][] = [
  ["exclude that is a string", { subnet: "10.1.2.0/24", exclude: "10.1.2.5" }],
  ["exclude with an invalid entry", { subnet: "10.1.2.0/24", exclude: ["10.1.2.300"] }],
  ["dataDir that is a number", { subnet: "10.1.2.0/24", dataDir: 5 }],
];

/** Whole configs wrong outside the ipam section. */
export const wholeConfigCases = (dataDir: string): [string, JsonObject][] => [
  [
    "args.cni.ips with a non-address",
    netconf({ dataDir, subnet: "10.1.2.0/24" }, { args: { cni: { ips: ["not-an-ip"] } } }),
  ],
  ["cniVersion that is a number", netconf({ dataDir, subnet: "10.1.2.0/24" }, { cniVersion: 1 })],
  ["a path-like network name", netconf({ dataDir, subnet: "10.1.2.0/24" }, { name: "../../etc" })],
];

/** A config of 8 MiB, over the 4 MiB stdin cap. */
export const hugeConfig = (dataDir: string): string =>
  JSON.stringify({ ...netconf({ dataDir, subnet: "10.1.2.0/24" }), pad: "x".repeat(8 * 1024 * 1024) });
