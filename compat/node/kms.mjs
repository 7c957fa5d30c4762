// Drives the real Infisical Node SDK's KMS calls against a lockbox server:
// kms().keys(), kms().encryption(), kms().signing(). Prints one JSON object
// with what it saw; exits non-zero on the first failure. Run by
// internal/api/nodesdk_test.go (TestNodeSDKKMS).
import { InfisicalSDK, EncryptionAlgorithm, KeyUsage, SigningAlgorithm } from "@infisical/sdk";

const { LOCKBOX_URL, CLIENT_ID, CLIENT_SECRET, PROJECT_ID } = process.env;
const b64 = (s) => Buffer.from(s).toString("base64");
const out = {};
try {
  const sdk = new InfisicalSDK({ siteUrl: LOCKBOX_URL });
  await sdk.auth().universalAuth.login({ clientId: CLIENT_ID, clientSecret: CLIENT_SECRET });
  const kms = sdk.kms();

  const key = await kms.keys().create({ projectId: PROJECT_ID, name: "node-enc", description: "from node",
    keyUsage: KeyUsage.ENCRYPTION, encryptionAlgorithm: EncryptionAlgorithm.AES_256_GCM });
  const byName = await kms.keys().getByName({ projectId: PROJECT_ID, name: "node-enc" });
  out.key = { sameId: byName.id === key.id, name: byName.name, usage: byName.keyUsage, alg: byName.encryptionAlgorithm,
    version: byName.version, description: byName.description };
  const ciphertext = await kms.encryption().encrypt({ keyId: key.id, plaintext: b64("hello from node") });
  out.decrypted = Buffer.from(await kms.encryption().decrypt({ keyId: key.id, ciphertext }), "base64").toString();

  out.signing = {};
  for (const [alg, sa] of [[EncryptionAlgorithm.ECC_NIST_P256, SigningAlgorithm.ECDSA_SHA_256],
    [EncryptionAlgorithm.RSA_4096, SigningAlgorithm.RSASSA_PKCS1_V1_5_SHA_256]]) {
    const sk = await kms.keys().create({ projectId: PROJECT_ID, name: "node-" + alg.toLowerCase().replaceAll("_", "-"),
      keyUsage: KeyUsage.SIGNING, encryptionAlgorithm: alg });
    const algs = await kms.signing().listSigningAlgorithms({ keyId: sk.id });
    const data = b64("node artifact");
    const signed = await kms.signing().sign({ keyId: sk.id, data, signingAlgorithm: sa });
    const ok = await kms.signing().verify({ keyId: sk.id, data, signature: signed.signature, signingAlgorithm: sa });
    const other = await kms.signing().verify({ keyId: sk.id, data: b64("other artifact"), signature: signed.signature, signingAlgorithm: sa });
    const publicKey = await kms.signing().getPublicKey({ keyId: sk.id });
    out.signing[alg] = { listed: algs.includes(sa), signedBy: signed.keyId === sk.id, valid: ok.signatureValid,
      otherValid: other.signatureValid, publicKeyBytes: Buffer.from(publicKey, "base64").length };
  }

  const deleted = await kms.keys().delete({ keyId: key.id });
  out.deleted = deleted.id === key.id;
  try {
    await kms.encryption().decrypt({ keyId: key.id, ciphertext });
    out.afterDelete = "still decrypts";
  } catch (e) {
    out.afterDelete = String(e.message || e);
  }
  console.log(JSON.stringify(out));
} catch (e) {
  console.error("node sdk kms failed:", e?.message || e);
  process.exit(1);
}
