// Hosts that ecr-credential-provider's registry regex must not match, from its own tests
// (cloud-provider-aws cmd/ecr-credential-provider/main_test.go, TestRegistryPatternMatch).
// Shared by the unit and black-box suites.
export const ANCHOR_NON_MATCHES: readonly string[] = [
  "foobar",
  "12345678901.dkr.ecr.us-west-2.amazonaws.com",
  "1234567890123.dkr.ecr.us-west-2.amazonaws.com",
  "12345678901a.dkr.ecr.us-west-2.amazonaws.com",
  "123456789012.dkr.ecr.us-west-2!.amazonaws.com",
  "123456789012.dkr.ecr.us-west-2.amazonaws.hacker.com",
  "123456789012.dkr.ecr.us-west-2.amazonaws.lol",
  "123456789012.dog.ecr.us-west-2.amazonaws.com",
  "123456789012.dkr.cat.us-west-2.amazonaws.com",
  "123456789012.dkr.ecr.us-iso-east-1.amazonaws.gov",
];
