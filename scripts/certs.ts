// Test PKI made with the openssl CLI. Idempotent: a stamp file marks a complete set.
//
//   ca.crt            "mtls-pool test CA" (root; signs server, alice, bob, carol, erin, intermediate)
//   intermediate.crt  "mtls-pool test intermediate CA" (signs dave)
//   other-ca.crt      "other CA" (unrelated root; signs mallory)
//   <client>.crt/.key/.fp  alice, bob (RSA 2048), carol (EC P-256), dave, mallory, erin (Ed25519)
//   dave-chain.crt    dave's leaf + intermediate
//   server.crt/.key   CN=localhost, SAN DNS:localhost, IP:127.0.0.1, IP:::1
//   attacker.key      an RSA key that matches no certificate
//   forged-alice.key, forged-carol.key  keys that hold the victim's public key (so that
//                     X509_check_private_key accepts them) with the attacker's private parts
//   tenant01..16.crt/.key  EC P-256 clients of the test CA, for load tests with many identities
import { execFile, execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, randomBytes, type JsonWebKey } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

export const TENANTS = Array.from({ length: 16 }, (_, i) => `tenant${String(i + 1).padStart(2, "0")}`);
export const CLIENTS = ["alice", "bob", "carol", "dave", "mallory", "erin", ...TENANTS];

const DAYS = "20000";
const run = promisify(execFile);
const STAMP = ".complete";

// One config for every certificate; each signing step picks its extension section.
const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[server]
basicConstraints = CA:FALSE
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
`;

/** Makes (or reuses) the test certificates in `dir`; returns `dir`. */
export async function makeCerts(dir: string): Promise<string> {
  if (existsSync(path.join(dir, STAMP))) return dir;
  await mkdir(dir, { recursive: true });
  const cnf = path.join(dir, "openssl.cnf");
  await writeFile(cnf, OPENSSL_CNF);
  const f = (name: string): string => path.join(dir, name);
  const openssl = (args: string[], input?: string): string =>
    execFileSync("openssl", args, { cwd: dir, encoding: "utf8", input, stdio: ["pipe", "pipe", "pipe"] });

  // Key generation is the slow part (RSA primes): do it all in parallel, then sign in order.
  const genKey = (name: string, algo: string[]) => run("openssl", ["genpkey", ...algo, "-out", f(`${name}.key`)]);
  const rsa = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
  const rsaKeys = ["ca", "other-ca", "intermediate", "server", "alice", "bob", "dave", "mallory", "attacker"];
  const ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
  await Promise.all([
    ...rsaKeys.map((name) => genKey(name, rsa)),
    ...["carol", ...TENANTS].map((name) => genKey(name, ec)),
    genKey("erin", ["-algorithm", "ED25519"]),
  ]);
  const selfSigned = (name: string, cn: string): void => {
    openssl(["req", "-config", cnf, "-x509", "-new", "-key", f(`${name}.key`), "-subj", `/CN=${cn}`,
      "-days", DAYS, "-extensions", "ca", "-set_serial", serial(), "-out", f(`${name}.crt`)]);
  };
  const signed = (name: string, cn: string, issuer: string, ext: string): void => {
    const csr = openssl(["req", "-config", cnf, "-new", "-key", f(`${name}.key`), "-subj", `/CN=${cn}`]);
    openssl(["x509", "-req", "-CA", f(`${issuer}.crt`), "-CAkey", f(`${issuer}.key`), "-set_serial", serial(),
      "-days", DAYS, "-extfile", cnf, "-extensions", ext, "-out", f(`${name}.crt`)], csr);
  };

  selfSigned("ca", "mtls-pool test CA");
  selfSigned("other-ca", "other CA");
  signed("intermediate", "mtls-pool test intermediate CA", "ca", "intermediate");
  signed("server", "localhost", "ca", "server");
  signed("alice", "alice", "ca", "client");
  signed("bob", "bob", "ca", "client");
  signed("carol", "carol", "ca", "client");
  signed("erin", "erin", "ca", "client");
  signed("dave", "dave", "intermediate", "client");
  signed("mallory", "mallory", "other-ca", "client");
  for (const tenant of TENANTS) signed(tenant, tenant, "ca", "client");

  const read = (name: string): Promise<string> => readFile(f(name), "utf8");
  await writeFile(f("dave-chain.crt"), (await read("dave.crt")) + (await read("intermediate.crt")));
  for (const name of CLIENTS) {
    // "sha256 Fingerprint=AB:CD:..." (OpenSSL 1.1 says "SHA256 Fingerprint=")
    const out = openssl(["x509", "-noout", "-fingerprint", "-sha256", "-in", f(`${name}.crt`)]);
    const hex = out.trim().split("=")[1]?.replaceAll(":", "").toLowerCase() ?? "";
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`unexpected fingerprint output for ${name}: ${out}`);
    await writeFile(f(`${name}.fp`), hex); // no newline: read("*a") gives the bare hex
  }
  await writeFile(f("forged-alice.key"), forgedRsaKey(await read("alice.crt"), await read("attacker.key")));
  await writeFile(f("forged-carol.key"), forgedEcKey(await read("carol.crt"), await read("tenant16.key")));
  await writeFile(f(STAMP), "");
  return dir;
}

// A minimal DER writer for the two forged keys.
function der(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}
function derInteger(base64url: string): Buffer {
  const bytes = Buffer.from(base64url, "base64url");
  return der(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}
function pem(label: string, body: Buffer): string {
  return `-----BEGIN ${label}-----\n${body.toString("base64").replace(/.{64}/g, "$&\n").replace(/\n?$/, "\n")}-----END ${label}-----\n`;
}
const jwk = (key: { export(options: { format: "jwk" }): JsonWebKey }): JsonWebKey => key.export({ format: "jwk" });

/** RSAPrivateKey with the victim's n and e, and the attacker key's private numbers. */
function forgedRsaKey(victimCert: string, attackerKey: string): string {
  const victim = jwk(createPublicKey(victimCert));
  const own = jwk(createPrivateKey(attackerKey));
  const fields = [victim.n, victim.e, own.d, own.p, own.q, own.dp, own.dq, own.qi] as string[];
  return pem("RSA PRIVATE KEY", der(0x30, Buffer.concat([der(0x02, Buffer.from([0])), ...fields.map(derInteger)])));
}

/** ECPrivateKey (P-256) with the attacker key's scalar and the victim's public point. */
function forgedEcKey(victimCert: string, attackerKey: string): string {
  const victim = jwk(createPublicKey(victimCert));
  const own = jwk(createPrivateKey(attackerKey));
  const point = Buffer.concat([Buffer.from([0, 4]), Buffer.from(victim.x!, "base64url"), Buffer.from(victim.y!, "base64url")]);
  const prime256v1 = Buffer.from("06082a8648ce3d030107", "hex");
  return pem("EC PRIVATE KEY", der(0x30, Buffer.concat([
    der(0x02, Buffer.from([1])),
    der(0x04, Buffer.from(own.d!, "base64url")),
    der(0xa0, prime256v1),
    der(0xa1, der(0x03, point)),
  ])));
}

/** A random positive 64-bit serial, so that no two test certificates share issuer+serial. */
function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = bytes[0]! & 0x7f;
  return `0x${bytes.toString("hex")}`;
}
