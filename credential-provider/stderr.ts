// Every line we print may reach the kubelet's log: the kubelet quotes a failed provider's stderr
// in its error (k8s.io/kubernetes pkg/credentialprovider/plugin). So one sink per run carries
// everything bound for stderr. It knows the run's secrets, each registered where it is learned
// (environment, request, cache file, STS answer, decoded ECR token), and removes them, in every
// encoding a peer or the SDK may quote, from each line before it is written.

/** The part of the sink that code which learns a secret needs. */
export type SecretKeeper = {
  /** From now on, `value` and its encodings never reach stderr. */
  secret(value: string | undefined): void;
};

export type Stderr = SecretKeeper & {
  /** A warning for the operator: written by `flush` after the answer, or joined to the error by `fail`. */
  warn(message: string): void;
  /** The run failed: one line, the warnings joined to it (stderr stays one line); returns the exit code. */
  fail(message: string): 1;
  /** Writes the warnings held so far, one line each. */
  flush(): void;
  /** Text for a person (the CLI's report and usage errors): secrets removed, its own lines kept. */
  print(text: string): void;
  /** `text` with the secrets removed, on one line: for the log file and the remembered failures. */
  scrub(text: string): string;
  /** The warnings held so far, scrubbed. */
  warnings(): string[];
};

/** Shorter values would redact ordinary words; no secret we handle is this short. */
const MIN_SECRET_LENGTH = 4;

/** A secret as a peer or the SDK may quote it: raw, base64 (padded or not), base64url, percent- and JSON-escaped. */
export function encodings(secret: string): string[] {
  if (secret.length < MIN_SECRET_LENGTH) return [];
  const bytes = Buffer.from(secret, "utf8");
  const base64 = bytes.toString("base64");
  const forms = [
    secret,
    base64,
    base64.replace(/=+$/, ""),
    bytes.toString("base64url"),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
  ];
  return [...new Set(forms)];
}

// JWTs (service-account tokens, web-identity tokens) and secret-looking fields, in case a peer
// echoes one we were never told about; a JWT cut after its payload's start still goes.
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g;
const SECRET_FIELD =
  /((?:SecretAccessKey|SessionToken|authorizationToken|password|WebIdentityToken)(?:"?\s*[:=]\s*"?|>))[^"'<\s,&]+/gi;

export const REDACTED = "[REDACTED]";

/** `text` with every known secret form (longest first, so no fragment of a longer one survives) replaced. */
export function redact(text: string, forms: Iterable<string>): string {
  let out = text;
  for (const s of [...forms].sort((a, b) => b.length - a.length)) out = out.split(s).join(REDACTED);
  return out.replace(JWT, REDACTED).replace(SECRET_FIELD, `$1${REDACTED}`);
}

/** One line for the kubelet's log. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

/** The run's sink: `write` receives only redacted text. */
export function stderrSink(program: string, write: (text: string) => void): Stderr {
  const forms = new Set<string>();
  const warnings: string[] = [];
  const line = (message: string) => `${program}: ${oneLine(redact(message, forms))}\n`;
  return {
    secret(value) {
      for (const f of encodings(value ?? "")) forms.add(f);
    },
    warn(message) {
      warnings.push(message);
    },
    fail(message) {
      const joined = warnings.length ? `${message} (${warnings.join("; ")})` : message;
      warnings.length = 0;
      write(line(joined));
      return 1;
    },
    flush() {
      for (const w of warnings.splice(0)) write(line(w));
    },
    print(text) {
      write(redact(text, forms));
    },
    scrub(text) {
      return oneLine(redact(text, forms));
    },
    warnings() {
      return warnings.map((w) => oneLine(redact(w, forms)));
    },
  };
}
