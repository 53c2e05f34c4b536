// What the anchor takes from the request's image: the registry host. The image has no tag or
// digest when the kubelet sends it, but a person may pass one to `get-credentials`.

export type ImageRef = {
  /** hostname only, port dropped: what the anchor matches against the ECR regex */
  hostname: string;
  /** text before the first "/": the kubelet's Registry cache key and our auth key */
  registry: string;
  /** the rest, without tag or digest */
  repository: string;
};

export type ImageParse = { ok: true; value: ImageRef } | { ok: false; error: string };

export function parseImage(image: string): ImageParse {
  // The anchor: url.Parse("https://" + image), error "error parsing image reference %s: %v".
  const fail = (why: string): ImageParse => ({ ok: false, error: `error parsing image reference ${image}: ${why}` });
  if (image === "") return { ok: false, error: "image in plugin request was empty" };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: Go's net/url refuses exactly these bytes
  if (/[\x00-\x20\x7f]/.test(image)) return fail(`parse "https://${image}": net/url: invalid control character in URL`);
  const slash = image.indexOf("/");
  const registry = slash >= 0 ? image.slice(0, slash) : image;
  let repository = slash >= 0 ? image.slice(slash + 1) : "";
  let hostname = registry;
  if (registry.startsWith("[")) {
    const close = registry.indexOf("]");
    if (close < 0) return fail(`parse "https://${image}": missing ']' in host`);
    hostname = registry.slice(1, close);
  } else {
    const colon = registry.lastIndexOf(":");
    if (colon >= 0) {
      if (!/^[0-9]*$/.test(registry.slice(colon + 1))) {
        return fail(`parse "https://${image}": invalid port ${JSON.stringify(registry.slice(colon))} after host`);
      }
      hostname = registry.slice(0, colon);
    }
  }
  if (hostname === "") return fail("no host in image reference");
  // Go's net/url host characters (sub-delims included): "!" parses, then misses the ECR regex.
  if (!/^[A-Za-z0-9\-_.~!$&'()*+,;=<>"%]+$/.test(hostname) && !registry.startsWith("[")) {
    return fail(`parse "https://${image}": invalid character in host name`);
  }
  const at = repository.indexOf("@");
  if (at >= 0) repository = repository.slice(0, at);
  const lastSlash = repository.lastIndexOf("/");
  const colon = repository.indexOf(":", lastSlash + 1);
  if (colon >= 0) repository = repository.slice(0, colon);
  return { ok: true, value: { hostname: hostname.toLowerCase(), registry, repository } };
}
