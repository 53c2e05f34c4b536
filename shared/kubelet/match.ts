// How the kubelet matches an image against a matchImages entry or an auth key
// (k8s.io/kubernetes pkg/credentialprovider: ParseSchemelessURL, SplitURL, URLsMatch):
// both are parsed as "https://"+string; ports must be equal; hosts must have the same number of
// dot-separated labels, each matched with Go's path/filepath.Match (so `*` never crosses a dot);
// the pattern's path must be a raw string prefix of the image's path.

export type SchemelessURL = { host: string; port: string; labels: string[]; path: string };
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

// Characters Go's net/url accepts unescaped in a host (shouldEscape, encodeHost).
const HOST_CHAR = /^[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"%]$/;

function unescapePath(p: string): Parsed<string> {
  const bad = /%(?![0-9A-Fa-f]{2})/.exec(p);
  if (bad) return { ok: false, error: `invalid URL escape ${JSON.stringify(p.slice(bad.index, bad.index + 3))}` };
  try {
    return { ok: true, value: decodeURIComponent(p) };
  } catch {
    return { ok: true, value: p }; // escapes of non-UTF-8 bytes: Go keeps the bytes; we keep the text
  }
}

/** url.Parse("https://" + s) as the kubelet does it, reduced to what matching uses. */
export function parseSchemelessURL(s: string): Parsed<SchemelessURL> {
  const fail = (why: string): Parsed<SchemelessURL> => ({ ok: false, error: `parse "https://${s}": ${why}` });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go's net/url refuses exactly these bytes
  if (/[\x00-\x1f\x7f]/.test(s)) return fail("net/url: invalid control character in URL");
  let rest = s;
  const hash = rest.indexOf("#");
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf("?");
  if (q >= 0) rest = rest.slice(0, q);
  const slash = rest.indexOf("/");
  let authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const rawPath = slash >= 0 ? rest.slice(slash) : "";
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  let hostPart = authority;
  let port = "";
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) return fail(`missing ']' in host`);
    const after = authority.slice(close + 1);
    if (after !== "" && !/^:[0-9]*$/.test(after)) return fail(`invalid port ${JSON.stringify(after)} after host`);
    hostPart = authority.slice(0, close + 1);
    port = after.slice(1);
  } else {
    const colon = authority.lastIndexOf(":");
    if (colon >= 0) {
      const colonPort = authority.slice(colon);
      if (!/^:[0-9]*$/.test(colonPort)) return fail(`invalid port ${JSON.stringify(colonPort)} after host`);
      hostPart = authority.slice(0, colon);
      port = colonPort.slice(1);
    }
  }
  for (const ch of hostPart) {
    if (!HOST_CHAR.test(ch)) return fail(`invalid character ${JSON.stringify(ch)} in host name`);
  }
  if (/%(?![0-9A-Fa-f]{2})/.test(hostPart)) return fail("invalid URL escape in host");
  const path = unescapePath(rawPath);
  if (!path.ok) return fail(path.error);
  // net.SplitHostPort: "[v6]" without a port fails, and SplitURL then keeps the brackets.
  const host = hostPart.startsWith("[") && port !== "" ? hostPart.slice(1, -1) : hostPart;
  return { ok: true, value: { host, port, labels: host.split("."), path: path.value } };
}

export class BadPatternError extends Error {}
const BAD = "syntax error in pattern";

type Chunk = { star: boolean; chunk: string[]; rest: string[] };

function scanChunk(pattern: string[]): Chunk {
  let p = pattern;
  let star = false;
  while (p.length > 0 && p[0] === "*") {
    p = p.slice(1);
    star = true;
  }
  let inrange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case "\\":
        if (i + 1 < p.length) i++;
        break;
      case "[":
        inrange = true;
        break;
      case "]":
        inrange = false;
        break;
      case "*":
        if (!inrange) break scan;
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

function getEsc(chunk: string[]): { r: string; rest: string[] } {
  let c = chunk;
  if (c.length === 0 || c[0] === "-" || c[0] === "]") throw new BadPatternError(BAD);
  if (c[0] === "\\") {
    c = c.slice(1);
    if (c.length === 0) throw new BadPatternError(BAD);
  }
  const r = c[0] as string;
  const rest = c.slice(1);
  if (rest.length === 0) throw new BadPatternError(BAD);
  return { r, rest };
}

/** Go's matchChunk: the rest of s after chunk, or null when it does not match; throws on a bad pattern. */
function matchChunk(chunkIn: string[], sIn: string[]): string[] | null {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0];
    if (c === "[") {
      let r = "";
      if (!failed) {
        r = s[0] as string;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === "^") {
        negated = true;
        chunk = chunk.slice(1);
      }
      let match = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === "]" && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk);
        chunk = lo.rest;
        let hi = lo.r;
        if (chunk[0] === "-") {
          const h = getEsc(chunk.slice(1));
          hi = h.r;
          chunk = h.rest;
        }
        const cp = r.codePointAt(0) ?? -1;
        if ((lo.r.codePointAt(0) ?? 0) <= cp && cp <= (hi.codePointAt(0) ?? 0)) match = true;
        nrange++;
      }
      if (match === negated) failed = true;
    } else if (c === "?") {
      if (!failed) {
        if (s[0] === "/") failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === "\\") {
        chunk = chunk.slice(1);
        if (chunk.length === 0) throw new BadPatternError(BAD);
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  return failed ? null : s;
}

/** Go path/filepath.Match on Linux (separator "/"); throws BadPatternError like ErrBadPattern. */
export function filepathMatch(patternText: string, nameText: string): boolean {
  let pattern = Array.from(patternText);
  let name = Array.from(nameText);
  outer: while (pattern.length > 0) {
    const { star, chunk, rest } = scanChunk(pattern);
    pattern = rest;
    if (star && chunk.length === 0) return !name.includes("/");
    const t = matchChunk(chunk, name);
    if (t !== null && (t.length === 0 || pattern.length > 0)) {
      name = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < name.length && name[i] !== "/"; i++) {
        const t2 = matchChunk(chunk, name.slice(i + 1));
        if (t2 !== null) {
          if (pattern.length === 0 && t2.length > 0) continue;
          name = t2;
          continue outer;
        }
      }
    }
    while (pattern.length > 0) {
      const next = scanChunk(pattern);
      pattern = next.rest;
      matchChunk(next.chunk, []);
    }
    return false;
  }
  return name.length === 0;
}

export type MatchResult = { ok: true; matched: boolean } | { ok: false; error: string };

/** URLsMatchStr(glob, target). */
export function urlsMatch(glob: string, target: string): MatchResult {
  const g = parseSchemelessURL(glob);
  if (!g.ok) return g;
  const t = parseSchemelessURL(target);
  if (!t.ok) return t;
  if (g.value.port !== t.value.port) return { ok: true, matched: false };
  if (g.value.labels.length !== t.value.labels.length) return { ok: true, matched: false };
  try {
    for (let i = 0; i < g.value.labels.length; i++) {
      if (!filepathMatch(g.value.labels[i] as string, t.value.labels[i] as string)) return { ok: true, matched: false };
    }
  } catch (e) {
    if (e instanceof BadPatternError) return { ok: false, error: e.message };
    throw e;
  }
  return { ok: true, matched: t.value.path.startsWith(g.value.path) };
}
