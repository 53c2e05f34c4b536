// The kubelet's matchImages / auth-key matching (k8s pkg/credentialprovider URLsMatch) and Go's
// path/filepath.Match, including the cases the reference calls out.
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { filepathMatch, parseSchemelessURL, urlsMatch } from "../../shared/kubelet/match.ts";

const test = suite("kubelet: matchImages globbing");
const m = (glob: string, image: string) => {
  const r = urlsMatch(glob, image);
  if (!r.ok) throw new Error(r.error);
  return r.matched;
};

test("`*` matches within one label and never crosses a dot", () => {
  assert.ok(m("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-west-2.amazonaws.com/app"));
  assert.not.ok(m("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr-fips.us-west-2.amazonaws.com/app"));
  assert.not.ok(m("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr-ecr.us-west-2.on.aws/app"));
  assert.not.ok(m("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app"));
  assert.ok(m("*.dkr.ecr.*.amazonaws.com.cn", "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/app"));
  assert.not.ok(m("*.example.com", "a.b.example.com"));
  assert.ok(m("*.*.example.com", "a.b.example.com"));
});

test("ports must be equal; the glob's path is a raw prefix of the image's", () => {
  assert.ok(m("registry.local:5000", "registry.local:5000/a"));
  assert.not.ok(m("registry.local", "registry.local:5000/a"));
  assert.not.ok(m("registry.local:5000", "registry.local/a"));
  assert.ok(m("registry.local/team", "registry.local/team/app"));
  assert.ok(m("registry.local/team", "registry.local/teamwork"), "a raw string prefix, not a path prefix");
  assert.not.ok(m("registry.local/team", "registry.local/other"));
});

test("filepath.Match: ?, classes, ranges, negation with ^, escapes, and bad patterns", () => {
  assert.ok(filepathMatch("us-?est-2", "us-west-2"));
  assert.ok(filepathMatch("[a-c]x", "bx"));
  assert.not.ok(filepathMatch("[^a-c]x", "bx"));
  assert.ok(filepathMatch("[^a-c]x", "dx"));
  assert.ok(filepathMatch("\\*", "*"));
  assert.not.ok(filepathMatch("\\*", "a"));
  assert.ok(filepathMatch("a*b*c", "axxbyyc"));
  assert.not.ok(filepathMatch("a*b", "acb/b"));
  assert.ok(filepathMatch("*", ""));
  assert.throws(() => filepathMatch("[", "a"));
  assert.throws(() => filepathMatch("a\\", "a"));
  assert.throws(() => filepathMatch("[]a]", "a"));
  const bad = urlsMatch("[z-", "x");
  assert.ok(!bad.ok);
});

test('parseSchemelessURL: what url.Parse("https://"+s) refuses', () => {
  assert.ok(parseSchemelessURL("*.dkr.ecr.*.amazonaws.com").ok);
  assert.ok(parseSchemelessURL("[::1]:5000/x").ok);
  const e = (s: string) => {
    const p = parseSchemelessURL(s);
    return p.ok ? "" : p.error;
  };
  assert.is(e("bad host"), 'parse "https://bad host": invalid character " " in host name');
  assert.match(e("host:port"), /invalid port ":port" after host/);
  assert.match(e("a\u0001b"), /invalid control character/);
  assert.match(e("a.io/%zz"), /invalid URL escape "%zz"/);
});

test.run();
