// The kubelet reads its CredentialProviderConfig with sigs.k8s.io/yaml, that is go-yaml v2: YAML
// 1.1 scalars (`yes`, `on` are booleans: go-yaml v2 resolve.go), and with a strict decoder that
// rejects a repeated field (plugin.go: serializer.EnableStrict). Loaded only by validate-config.
import { parseDocument } from "yaml";
import type { ParseDoc } from "./kubelet-config.ts";

export const parseConfigYaml: ParseDoc = (text) => {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, version: "1.1" });
  if (doc.errors.length > 0) return { ok: false, error: doc.errors.map((e) => e.message.split("\n")[0]).join("; ") };
  return { ok: true, value: doc.toJS() as unknown };
};
