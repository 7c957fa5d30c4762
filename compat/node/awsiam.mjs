// Drives the real Infisical Node SDK's auth().awsIamAuth.login() against a
// lockbox server: the SDK signs GetCallerIdentity with @smithy/signature-v4
// from the AWS credentials in the environment (AWS_REGION set, so no
// instance metadata is asked), then reads a secret with the token. Prints
// one JSON object; exits non-zero on failure. Run by
// internal/api/nodesdk_test.go (TestNodeSDKAWSIAMLogin).
import { InfisicalSDK } from "@infisical/sdk";

const { LOCKBOX_URL, IDENTITY_ID, PROJECT_ID } = process.env;
const out = {};
try {
  const sdk = new InfisicalSDK({ siteUrl: LOCKBOX_URL });
  await sdk.auth().awsIamAuth.login({ identityId: IDENTITY_ID });
  out.loggedIn = true;
  const s = await sdk.secrets().getSecret({ projectId: PROJECT_ID, environment: "dev", secretName: "DB_PASSWORD" });
  out.value = s.secretValue;
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(String(e?.message ?? e));
  process.exit(1);
}
