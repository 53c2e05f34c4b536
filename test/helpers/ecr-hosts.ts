// Hosts from ecr-credential-provider's own tests that its registry regex must not match
// (../shared/reference/kubelet-credential-provider.md, checklist item 8). Shared by the unit and
// black-box suites.
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
