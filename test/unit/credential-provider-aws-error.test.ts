// What an SDK error may say on stderr: the HTTP status, the content type and a parsed AWS error's
// code and message; never the body of an answer the SDK could not parse. The error objects are
// shaped as the AWS SDK for JavaScript v3 throws them (black-box tests against the local endpoint
// cover the real SDK: test/credential-provider/aws-errors.test.ts).
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { describeAwsError, MAX_MESSAGE_LENGTH } from "../../credential-provider/aws-error.ts";

const test = suite("credential-provider: AWS error text");

/** An SDK error: the fields it sets, `$response` hidden as the SDK hides it. */
function sdkError(fields: Record<string, unknown>, response?: { headers: Record<string, string> }): Error {
  const e = Object.assign(new Error(String(fields.message ?? "")), fields);
  if (response) Object.defineProperty(e, "$response", { value: response, enumerable: false });
  return e;
}

const BODY = "QVdTOnNlY3JldC1ib2R5LXRva2Vu";

test("a parsed AWS error: status, code and message", () => {
  const e = sdkError({
    name: "AccessDeniedException",
    message: "User is not authorized to perform ecr:GetAuthorizationToken",
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
  assert.is(
    describeAwsError(e, "JSON"),
    "HTTP 400 AccessDeniedException: User is not authorized to perform ecr:GetAuthorizationToken",
  );
});

test("a body the SDK could not parse: status and content type, nothing of the body or the SDK's hint", () => {
  const e = sdkError(
    {
      name: "SyntaxError",
      message: `Unexpected token 'Q', "${BODY.slice(0, 10)}"... is not valid JSON\n  Deserialization error: to see the raw response, inspect the hidden field {error}.$response on this object.`,
      $metadata: { httpStatusCode: 200 },
    },
    { headers: { "content-type": "text/html; charset=utf-8" } },
  );
  const text = describeAwsError(e, "JSON");
  assert.is(text, "HTTP 200, a body that is not valid JSON (text/html)");
});

test("an error answer with no AWS error in it (empty or foreign body)", () => {
  const e = sdkError({
    name: "Unknown",
    message: "UnknownError",
    $fault: "server",
    $metadata: { httpStatusCode: 503 },
  });
  assert.is(describeAwsError(e, "JSON"), "HTTP 503, no AWS error in the answer");
});

test("a code that is not an identifier is not printed", () => {
  const e = sdkError({ name: `${BODY} x`, message: "m", $fault: "client", $metadata: { httpStatusCode: 400 } });
  assert.is(describeAwsError(e, "JSON"), "HTTP 400, no AWS error in the answer");
});

test("a long or multi-line message is cut to one line", () => {
  const e = sdkError({
    name: "ServerException",
    message: `a\n${"x".repeat(1000)}`,
    $fault: "server",
    $metadata: { httpStatusCode: 500 },
  });
  const text = describeAwsError(e, "JSON");
  assert.not.match(text, "\n");
  assert.ok(text.length < MAX_MESSAGE_LENGTH + 40, `${text.length} characters`);
  assert.ok(text.endsWith("…"));
});

test("the cut never leaves the start of a word: a long secret the peer echoed goes whole or not at all", () => {
  const secret = "S".repeat(120);
  const e = sdkError({
    name: "ValidationException",
    message: `${"padding ".repeat(30)}${secret} tail`,
    $fault: "client",
    $metadata: { httpStatusCode: 400 },
  });
  const text = describeAwsError(e, "JSON");
  assert.ok(text.endsWith("padding …"), text);
  assert.not.match(text, "SSSS");
});

test("no HTTP answer: the SDK's reason, with its name unless it is plain Error", () => {
  assert.is(
    describeAwsError(sdkError({ name: "TimeoutError", message: "Request did not complete within 8000 ms" })),
    "TimeoutError: Request did not complete within 8000 ms",
  );
  assert.is(
    describeAwsError(sdkError({ message: "connect ECONNREFUSED 127.0.0.1:9" })),
    "connect ECONNREFUSED 127.0.0.1:9",
  );
});

test("no HTTP answer, but a parser's text (the container credentials provider wraps JSON.parse errors)", () => {
  const e = sdkError({
    name: "CredentialsProviderError",
    message: `SyntaxError: Unexpected token 'Q', "${BODY.slice(0, 10)}"... is not valid JSON`,
  });
  assert.is(describeAwsError(e), "CredentialsProviderError: a body that could not be parsed");
});

test("not an Error at all", () => {
  assert.is(describeAwsError("boom"), "boom");
  assert.is(describeAwsError(undefined), "undefined");
});

test.run();
