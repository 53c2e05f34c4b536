// berth-ipam's operator CLI, for a person on the node: inspect, repair and audit the store.
// Loaded only when berth-ipam runs with arguments and no CNI_COMMAND (cni/main.ts); yargs is
// loaded only here. Exit codes: 0 success, 1 failure (one line on stderr), 2 usage error.
import yargs, { type Argv } from "yargs";
import { versionLine } from "../../shared/build-info.ts";
import { writeStderr } from "../../shared/io.ts";
import { errorMessage } from "../../shared/json.ts";
import { parseIp, type Ip } from "../ip.ts";
import { StoreError } from "../store/errors.ts";
import { CliError, failure, usageError } from "./errors.ts";
import { list } from "./list.ts";
import { print } from "./output.ts";
import { gc, readKeepFile, release, report } from "./release.ts";
import { recover, recoverReport } from "./recover.ts";
import { show } from "./show.ts";
import { etcdCommands, networks, onEtcd, oneNetwork, type EtcdNetwork, type Selection } from "./target.ts";
import { usage } from "./usage.ts";
import { validate } from "./validate.ts";
import { verifyNetwork, verifyOutput } from "./verify.ts";

const PROGRAM = "berth-ipam";

/** What a command printed, and the one-line reason when it ends in exit 1 all the same. */
type Outcome = { out: string; failed?: string };

type Global = { conf?: string; "data-dir"?: string; network?: string; json?: boolean };

const selection = (a: Global): Selection => ({ conf: a.conf, dataDir: a["data-dir"], network: a.network });

function address(text: string, flag: string): Ip {
  const ip = parseIp(text);
  if (!ip) throw usageError(`${flag} ${JSON.stringify(text)} is not an IP address`);
  return ip;
}

const atLeastOne = (sel: Selection) => {
  const found = networks(sel);
  if (found.length === 0) throw failure(`no berth-ipam store in ${sel.dataDir ?? "/var/lib/cni/networks"}`);
  return found;
};

/** The --conf network, which must be on the etcd store, for the commands only etcd has. */
function etcdNetwork(sel: Selection, what: string): EtcdNetwork {
  if (sel.conf === undefined) throw usageError(`${what} needs --conf FILE, a network config on the etcd store`);
  const net = oneNetwork(sel);
  if (!onEtcd(net))
    throw failure(`${what} works on the etcd store; network ${net.network} uses the local store (ipam.store)`);
  return net;
}

const dryRun = { type: "boolean", default: false, describe: "print what would change, change nothing" } as const;

function parser(argv: string[], run: (fn: () => Promise<Outcome> | Outcome) => void): Argv {
  return yargs(argv)
    .scriptName(PROGRAM)
    .usage(
      `${versionLine(PROGRAM)}\n\nA CNI IPAM plugin; run by a person, it inspects and repairs a node's stores.\n` +
        "Stores: --conf FILE (the network's .conf or .conflist), or --data-dir DIR [--network NAME].\n\n" +
        `Usage: ${PROGRAM} <command> [options]`,
    )
    .option("conf", { type: "string", describe: "network config (.conf, or .conflist with a berth-ipam plugin)" })
    .option("data-dir", {
      type: "string",
      describe: "data dir holding one directory per network [default: /var/lib/cni/networks]",
    })
    .option("network", { type: "string", describe: "only this network" })
    .option("json", { type: "boolean", default: false, describe: "JSON for scripts instead of text columns" })
    .conflicts("conf", "data-dir")
    .command(
      "list",
      "every reservation: network, address, container ID, ifname, when it was reserved",
      (y) =>
        y
          .option("container-id", { type: "string", describe: "only this container's" })
          .option("ifname", { type: "string", describe: "only this interface's" })
          .option("address", { type: "string", describe: "only this address" })
          .option("node", { type: "string", describe: "etcd store: only this node's" }),
      (a) =>
        run(async () => {
          const filter = {
            containerId: a["container-id"],
            ifname: a.ifname,
            ip: a.address === undefined ? undefined : address(a.address, "--address"),
            node: a.node,
          };
          return { out: await list(networks(selection(a)), filter, a.json) };
        }),
    )
    .command(
      "show <address>",
      "who holds ADDRESS, or that it is free, excluded, a gateway or outside every range",
      (y) => y.positional("address", { type: "string", demandOption: true }),
      (a) => run(async () => ({ out: await show(atLeastOne(selection(a)), address(a.address, "address"), a.json) })),
    )
    .command(
      "usage",
      "per network and range set: size, reserved, free, excluded, the round-robin cursor",
      (y) => y,
      (a) => run(async () => ({ out: await usage(atLeastOne(selection(a)), a.json) })),
    )
    .command(
      "release [address]",
      "free a leaked attachment (--container-id ID [--ifname IF]) or one ADDRESS, in one transaction",
      (y) =>
        y
          .positional("address", { type: "string", describe: "the address to free" })
          .option("container-id", { type: "string", describe: "free this container's addresses" })
          .option("ifname", { type: "string", describe: "with --container-id: only this interface's" })
          .option("dry-run", dryRun),
      (a) =>
        run(async () => {
          if ((a.address === undefined) === (a["container-id"] === undefined))
            throw usageError("release needs either ADDRESS or --container-id ID");
          if (a.ifname !== undefined && a["container-id"] === undefined)
            throw usageError("--ifname goes with --container-id");
          const target =
            a.address !== undefined
              ? { address: address(a.address, "address") }
              : { containerId: a["container-id"] ?? "", ifname: a.ifname };
          const freed = await release(oneNetwork(selection(a)), target, a["dry-run"]);
          return { out: report(freed, a["dry-run"], a.json) };
        }),
    )
    .command(
      "gc",
      "CNI GC by hand: release every attachment of the network that --keep FILE does not list",
      (y) =>
        y
          .option("keep", {
            type: "string",
            demandOption: true,
            describe: 'JSON list of {"containerID", "ifname"} to keep (as cni.dev/valid-attachments)',
          })
          .option("dry-run", dryRun),
      (a) =>
        run(async () => {
          const keep = readKeepFile(a.keep);
          return { out: report(await gc(oneNetwork(selection(a)), keep, a["dry-run"]), a["dry-run"], a.json) };
        }),
    )
    .command(
      "verify",
      "SQLite's integrity check and the store's invariants; exit 1 with the problems found",
      (y) => y.option("repair", { type: "boolean", default: false, describe: "fix what needs no guess, and say what" }),
      (a) =>
        run(async () => {
          const sel = selection(a);
          const found = networks(sel);
          if (found.length === 0) return { out: `no berth-ipam store in ${sel.dataDir ?? "/var/lib/cni/networks"}\n` };
          const reports = [];
          for (const net of found) reports.push(await verifyNetwork(net, a.repair));
          const bad = reports.filter((r) => r.problems.length > 0);
          const n = bad.reduce((k, r) => k + r.problems.length, 0);
          return {
            out: verifyOutput(reports, a.json),
            failed: bad.length
              ? `verify: ${n} problem${n === 1 ? "" : "s"} in ${bad.map((r) => r.network).join(", ")}`
              : undefined,
          };
        }),
    )
    .command(
      "recover",
      "rebuild a network's reservations from libcni's result cache (after a lost store), in one transaction",
      (y) =>
        y
          .option("from-cni-cache", {
            type: "string",
            demandOption: true,
            describe: "libcni's result cache, e.g. /var/lib/cni/results",
          })
          .option("keep", { type: "string", describe: "restore only these attachments (as gc --keep)" })
          .option("rebuild-corrupt", {
            type: "boolean",
            default: false,
            describe: "replace a corrupt store (set aside) instead of refusing",
          })
          .option("dry-run", dryRun),
      (a) =>
        run(async () => {
          const keep = a.keep === undefined ? undefined : readKeepFile(a.keep);
          const net = oneNetwork(selection(a));
          // libcni's cache is one node's; a pool on etcd is every node's, and survives a lost node.
          if (onEtcd(net))
            throw failure(`recover works on the local store; network ${net.network} uses etcd (ipam.store)`);
          const done = await recover(net, {
            cacheDir: a["from-cni-cache"],
            keep,
            dryRun: a["dry-run"],
            rebuildCorrupt: a["rebuild-corrupt"],
          });
          return { out: recoverReport(done, a["dry-run"], a.json) };
        }),
    )
    .command(
      "node <action> <name>",
      "etcd store: `node remove NODE` frees a dead node's blocks, addresses and attachments in every pool",
      (y) =>
        y
          .positional("action", { type: "string", choices: ["remove"], demandOption: true })
          .positional("name", { type: "string", demandOption: true, describe: "the node (its store.node)" })
          .option("dry-run", dryRun),
      (a) =>
        run(async () => {
          const net = etcdNetwork(selection(a), "node remove");
          return { out: await (await etcdCommands()).nodeRemove(net, a.name, a["dry-run"], a.json) };
        }),
    )
    .command(
      "migrate",
      "etcd store: copy the node's local reservations of the --conf network into etcd, all or nothing",
      (y) =>
        y
          .option("from", {
            type: "string",
            describe: "data dir of the local store (holding <network>/berth.db) [default: the config's dataDir]",
          })
          .option("dry-run", dryRun),
      (a) =>
        run(async () => {
          const net = etcdNetwork(selection(a), "migrate");
          return (await etcdCommands()).migrateEtcd(net, a.from, a["dry-run"], a.json);
        }),
    )
    .command(
      "validate",
      "parse --conf FILE exactly as ADD would: the effective range sets, gateways, excluded addresses, routes",
      (y) => y,
      (a) =>
        run(() => {
          if (a.conf === undefined) throw usageError("validate needs --conf FILE");
          return { out: validate(a.conf, a.network, a.json) };
        }),
    )
    .demandCommand(1, "name a command")
    .strict()
    .version(false)
    .help()
    .alias("h", "help")
    .wrap(null)
    .exitProcess(false);
}

export async function runCli(argv: string[]): Promise<number> {
  let action: (() => Promise<Outcome> | Outcome) | undefined;
  let usageFailure: string | undefined;
  let asJson = false;
  const p = parser(argv, (fn) => {
    action = fn;
  }).fail((msg, err) => {
    usageFailure = msg || (err ? errorMessage(err) : "invalid arguments");
  });
  try {
    asJson = Boolean((await p.parseAsync()).json);
  } catch (e) {
    usageFailure ??= errorMessage(e);
  }
  if (usageFailure !== undefined) {
    writeStderr(`${PROGRAM}: ${usageFailure.split("\n")[0]} (${PROGRAM} --help for usage)\n`);
    return 2;
  }
  if (!action) return 0; // --help
  try {
    const { out, failed } = await action();
    print(out);
    if (!failed) return 0;
    writeStderr(`${PROGRAM}: ${failed}\n`);
    return 1;
  } catch (e) {
    if (e instanceof CliError) {
      // A config the plugin refuses: for scripts, the plugin's own error object too.
      if (e.cni && asJson)
        print(`${JSON.stringify({ code: e.cni.code, msg: e.cni.message, details: e.cni.details || undefined })}\n`);
      writeStderr(`${PROGRAM}: ${e.message.split("\n")[0]}\n`);
      return e.exitCode;
    }
    // A store error that reached here unwrapped (say, busy for the store's whole wait): its own words.
    const what = e instanceof StoreError ? e.message : `internal error: ${errorMessage(e)}`;
    writeStderr(`${PROGRAM}: ${what.split("\n")[0]}\n`);
    return 1;
  }
}
