// Every message we print may reach kubelet logs (the kubelet includes a failed provider's stderr
// in its error): each known secret is replaced before anything is written to stderr.

const known = new Set<string>();

export function addSecret(value: string | undefined): void {
  if (value === undefined || value.length < 4) return;
  known.add(value);
  // An ECR token is base64("AWS:" + password); an SDK error may quote either form.
  known.add(Buffer.from(value, "utf8").toString("base64"));
}

// JWTs (service-account tokens, web-identity tokens) and secret-looking fields, in case a peer
// echoes one we were never told about.
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const SECRET_FIELD =
  /((?:SecretAccessKey|SessionToken|authorizationToken|password|WebIdentityToken)(?:"?\s*[:=]\s*"?|>))[^"'<\s,&]+/gi;

export function redact(text: string): string {
  let out = text;
  for (const s of [...known].sort((a, b) => b.length - a.length)) out = out.split(s).join("[REDACTED]");
  return out.replace(JWT, "[REDACTED]").replace(SECRET_FIELD, "$1[REDACTED]");
}

/** One line for the kubelet's log, secrets removed. */
export function safeLine(text: string): string {
  return redact(text)
    .replace(/\s*[\r\n]+\s*/g, " ")
    .trim();
}
