// The skel dispatcher with fake commands: what reaches the commands, and what reaches stdout.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { runCni, type CniHandlers, type CniRequest } from "../../shared/cni/dispatch.ts";
import { invalidConfig } from "../../shared/cni/errors.ts";

type Captured = { code: number; stdout: string; stderr: string; calls: string[]; req?: CniRequest };

async function run(env: Record<string, string>, stdin: string, handlers: Partial<CniHandlers> = {}): Promise<Captured> {
  const calls: string[] = [];
  let req: CniRequest | undefined;
  const record = (name: string) => (r: CniRequest) => {
    calls.push(name);
    req = r;
  };
  const all: CniHandlers = {
    add: (r) => {
      record("add")(r);
      return { ips: [{ address: "10.0.0.2/24", gateway: "10.0.0.1" }], routes: [], dns: {} };
    },
    del: record("del"),
    check: record("check"),
    gc: record("gc"),
    status: record("status"),
    ...handlers,
  };
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCni(all, {
    about: "CNI test plugin",
    env,
    stdin: () => ({ ok: true, text: stdin }),
    write: { stdout: (s) => out.push(s), stderr: (s) => err.push(s) },
  });
  return { code, stdout: out.join(""), stderr: err.join(""), calls, req };
}

const base = {
  CNI_COMMAND: "ADD",
  CNI_CONTAINERID: "c1",
  CNI_NETNS: "/n",
  CNI_IFNAME: "eth0",
  CNI_ARGS: "IgnoreUnknown=1",
};
const conf = JSON.stringify({ cniVersion: "0.4.0", name: "net", type: "x" });

const test = suite("dispatch");
test("ADD: the command gets typed env, version and the whole config; the result is rendered for the version", async () => {
  const r = await run(base, conf);
  assert.is(r.code, 0);
  assert.equal(r.calls, ["add"]);
  assert.is(r.req?.version, "0.4.0");
  assert.is(r.req?.name, "net");
  assert.is(r.req?.env.args, "IgnoreUnknown=1");
  assert.equal(JSON.parse(r.stdout), {
    cniVersion: "0.4.0",
    ips: [{ version: "4", address: "10.0.0.2/24", gateway: "10.0.0.1" }],
    dns: {},
  });
});
test("a thrown CniError is printed once as the error JSON with the config's version, exit 1", async () => {
  const r = await run(base, conf, {
    add: () => {
      throw invalidConfig("bad thing", "why");
    },
  });
  assert.is(r.code, 1);
  assert.is(r.stdout, '{"cniVersion":"0.4.0","code":7,"msg":"bad thing","details":"why"}\n');
});
test("an unexpected exception is a one-line 999", async () => {
  const r = await run(base, conf, {
    add: () => {
      throw new TypeError("x is undefined\n  at f (file.ts:1:1)");
    },
  });
  assert.equal(JSON.parse(r.stdout), { cniVersion: "0.4.0", code: 999, msg: "x is undefined" });
});
test("DEL, CHECK, GC and STATUS print nothing on success", async () => {
  for (const [cmd, v] of [
    ["DEL", "0.4.0"],
    ["CHECK", "0.4.0"],
    ["GC", "1.1.0"],
    ["STATUS", "1.1.0"],
  ] as const) {
    const r = await run(
      { ...base, CNI_COMMAND: cmd, CNI_PATH: "/opt/cni/bin" },
      JSON.stringify({ cniVersion: v, name: "net" }),
    );
    assert.is(r.code, 0, r.stdout);
    assert.is(r.stdout, "");
  }
});
test("the network name is checked before the version (skel order)", async () => {
  const r = await run(base, JSON.stringify({ cniVersion: "9.0.0", name: "a/b" }));
  assert.is(JSON.parse(r.stdout).code, 7);
});
test("no CNI_COMMAND: about text on stderr, exit 0, stdout empty", async () => {
  const r = await run({}, "");
  assert.is(r.code, 0);
  assert.is(r.stdout, "");
  assert.match(r.stderr, /^CNI test plugin\nCNI protocol versions supported: 0.1.0, /);
});
test("VERSION ignores unusable stdin and answers with every version", async () => {
  const r = await run({ CNI_COMMAND: "VERSION" }, "not json");
  assert.equal(JSON.parse(r.stdout).supportedVersions, ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]);
});
test.run();
