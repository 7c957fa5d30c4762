// Drives the real Infisical Node SDK's projects().inviteMembers against a
// lockbox server (POST /api/v2/workspace/{projectId}/memberships), by email
// and by username. Prints one JSON object with what it saw; exits non-zero
// on the first failure. Run by internal/api/nodesdk_test.go (TestNodeSDKInviteMembers).
import { InfisicalSDK } from "@infisical/sdk";

const { LOCKBOX_URL, CLIENT_ID, CLIENT_SECRET, PROJECT_ID } = process.env;
const out = {};
try {
  const sdk = new InfisicalSDK({ siteUrl: LOCKBOX_URL });
  await sdk.auth().universalAuth.login({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const byEmail = await sdk.projects().inviteMembers({ projectId: PROJECT_ID, emails: ["node-a@example.com"], roleSlugs: ["viewer"] });
  out.byEmail = byEmail.map((m) => ({ id: m.id, userId: m.userId, projectId: m.projectId }));
  const byUsername = await sdk.projects().inviteMembers({ projectId: PROJECT_ID, usernames: ["node-b@example.com"] });
  out.byUsername = byUsername.map((m) => ({ id: m.id, userId: m.userId, projectId: m.projectId }));
  try {
    await sdk.projects().inviteMembers({ projectId: PROJECT_ID, emails: ["stranger@example.com"] });
    out.strangerError = "";
  } catch (err) {
    out.strangerError = String(err.message || err);
  }
  console.log(JSON.stringify(out));
} catch (err) {
  console.error(err);
  process.exit(1);
}
