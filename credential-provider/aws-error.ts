// What an AWS SDK error may say in the kubelet's log. For an answer it cannot parse, the SDK's
// own text quotes the start of the body and points at a hidden `$response` field; the body is
// whatever a proxy, a captive portal or a misrouted endpoint sent, a credential included. So the
// text is built only from the HTTP status, the content type, and the error code and message of a
// parsed AWS error; when no HTTP answer came, from the SDK's reason with any parser quote removed.
import { isJsonObject, type JsonObject } from "../shared/json.ts";

/** What the API answers in: ECR and ECR Public awsJson 1.1, STS awsQuery (XML). */
export type BodyFormat = "JSON" | "XML";

/** Long enough for any AWS error message; a longer one is cut, so no peer can fill the kubelet's log. */
export const MAX_MESSAGE_LENGTH = 300;

/** AWS error codes are identifiers ("AccessDeniedException", "InvalidIdentityToken", "Throttling"). */
const ERROR_CODE = /^[A-Za-z][A-Za-z0-9._-]{0,99}$/;
/** The SDK's name for an error answer it found no code in (an empty or foreign body). */
const UNKNOWN_CODES = new Set(["Unknown", "UnknownError"]);
/** Texts of JSON.parse and the SDK's XML parser: V8's JSON messages quote the input they failed on. */
const PARSER_TEXT = /\bJSON\b|XML parse|\$response|Deserialization error/;

/** One line of at most MAX_MESSAGE_LENGTH characters. A cut never leaves part of a word: a secret
 * the peer echoed (a token, a key) is removed whole by the stderr sink, but not a prefix of one. */
function clip(text: string): string {
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > MAX_MESSAGE_LENGTH ? `${line.slice(0, MAX_MESSAGE_LENGTH + 1).replace(/\S*$/, "")}…` : line;
}

function httpStatus(e: JsonObject): number | undefined {
  const meta = e.$metadata;
  const status = isJsonObject(meta) ? meta.httpStatusCode : undefined;
  return typeof status === "number" && Number.isInteger(status) ? status : undefined;
}

/** The answer's media type (a header, not the body), when it is a well-formed one. */
function contentType(e: JsonObject): string {
  const res = e.$response;
  const headers = isJsonObject(res) ? res.headers : undefined;
  const value = isJsonObject(headers) ? headers["content-type"] : undefined;
  const type = typeof value === "string" ? value.split(";")[0]?.trim().toLowerCase() : undefined;
  return type && /^[a-z0-9.+-]+\/[a-z0-9.+-]+$/.test(type) ? ` (${type})` : "";
}

/** Whether the failed call got any HTTP answer (else: a timeout, a refused or reset connection, DNS). */
export function gotHttpAnswer(thrown: unknown): boolean {
  return typeof thrown === "object" && thrown !== null && httpStatus(thrown as JsonObject) !== undefined;
}

/** One line about a failed SDK call, never quoting the response body: "HTTP 403 AccessDenied: …". */
export function describeAwsError(thrown: unknown, format?: BodyFormat): string {
  const e = typeof thrown === "object" && thrown !== null ? (thrown as JsonObject) : {};
  const name = typeof e.name === "string" ? e.name : "";
  const message = typeof e.message === "string" ? e.message : String(thrown);
  const status = httpStatus(e);
  if (status !== undefined) {
    // An AWS error the SDK parsed ($fault set): its code and message are the service's words.
    if (e.$fault === "client" || e.$fault === "server") {
      if (!ERROR_CODE.test(name) || UNKNOWN_CODES.has(name))
        return `HTTP ${status}, no AWS error in the answer${contentType(e)}`;
      const text = clip(message);
      return text === "" || UNKNOWN_CODES.has(text) || text === name
        ? `HTTP ${status} ${name}`
        : `HTTP ${status} ${name}: ${text}`;
    }
    // Anything else with a status is an answer the SDK could not read.
    return `HTTP ${status}, a body that is not ${format ? `valid ${format}` : "an AWS answer"}${contentType(e)}`;
  }
  const reason =
    name === "SyntaxError" || PARSER_TEXT.test(message) ? "a body that could not be parsed" : clip(message);
  const shownName = name && name !== "Error" && ERROR_CODE.test(name) ? `${name}: ` : "";
  return `${shownName}${reason || "(no message)"}`;
}
