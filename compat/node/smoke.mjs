// Drives the real Infisical Node SDK against a lockbox server:
// login, create, list, get, update, delete. Prints one JSON object with what it
// saw; exits non-zero on the first failure. Run by internal/api/nodesdk_test.go.
import { InfisicalSDK } from "@infisical/sdk";

const { LOCKBOX_URL, CLIENT_ID, CLIENT_SECRET, PROJECT_ID } = process.env;
const out = {};
try {
  const sdk = new InfisicalSDK({ siteUrl: LOCKBOX_URL });
  await sdk.auth().universalAuth.login({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const base = { projectId: PROJECT_ID, environment: "dev" };
  await sdk.secrets().createSecret("NODE_KEY", { ...base, secretValue: "node-v1", secretComment: "from node" });
  await sdk.secrets().createSecret("NODE_REF", { ...base, secretValue: "ref:${NODE_KEY}" });
  const list = await sdk.secrets().listSecrets({ ...base, expandSecretReferences: true });
  out.listed = list.secrets.map((s) => `${s.secretKey}=${s.secretValue}`).sort();
  const got = await sdk.secrets().getSecret({ ...base, secretName: "NODE_KEY" });
  out.got = { key: got.secretKey, value: got.secretValue, comment: got.secretComment, version: got.version };
  await sdk.secrets().updateSecret("NODE_KEY", { ...base, secretValue: "node-v2" });
  out.updated = (await sdk.secrets().getSecret({ ...base, secretName: "NODE_KEY" })).secretValue;
  out.v1 = (await sdk.secrets().getSecret({ ...base, secretName: "NODE_KEY", version: 1 })).secretValue;
  await sdk.secrets().deleteSecret("NODE_KEY", base);
  try {
    await sdk.secrets().getSecret({ ...base, secretName: "NODE_KEY" });
    out.afterDelete = "still there";
  } catch (e) {
    out.afterDelete = String(e.message || e);
  }
  console.log(JSON.stringify(out));
} catch (e) {
  console.error("node sdk smoke failed:", e?.message || e);
  process.exit(1);
}
