/**
 * load_pem_pair(cert_pem, key_pem): the parsed certificate chain and private key for PEM text, as
 * { cert = <cdata>, key = <cdata> } (read-only), or nil, err. For applications that hold PEM as
 * strings (a config store, a shared dict, a secret manager): the same pair of strings gives the
 * same objects, so the identity cache stays warm and connections are reused, where parsing per
 * request (~1 ms) would give new objects, and a cold identity, every time.
 * A pair is kept only once its key is proven to be the certificate's (client_identity), so a
 * mismatched key is an error every time, never a cache entry.
 */
import { new_bounded, remember_in } from "./bounded";
import { client_identity } from "./identity";
import * as ssl from "ngx.ssl";

const huge = math.huge;
const parse_pem_cert = ssl.parse_pem_cert;
const parse_pem_priv_key = ssl.parse_pem_priv_key;

/** A parsed pair, as load_pem_pair returns it. */
interface PemPair {
  cert: CertChain;
  key: PrivateKey;
}

// cert PEM -> key PEM -> pair: exact strings as keys (Lua interns them, so a lookup hashes
// nothing), two levels so that no key is built per call. At most MAX_PAIRS pairs per worker:
// when full the cache is emptied and the dropped objects are freed once unused.
const MAX_PAIRS = 256;
const loaded = new_bounded<string, LuaTable<string, PemPair>>(MAX_PAIRS, false, huge);

function load_pem_pair(cert_pem: unknown, key_pem: unknown): LuaMultiReturn<[PemPair, undefined] | [undefined, string]> {
  if (typeof cert_pem !== "string") {
    return $multi(undefined, "load_pem_pair: cert_pem: string expected, got " + type(cert_pem));
  }
  if (typeof key_pem !== "string") {
    return $multi(undefined, "load_pem_pair: key_pem: string expected, got " + type(key_pem));
  }
  const by_key = loaded.entries.get(cert_pem);
  if (by_key !== undefined) {
    const known = by_key.get(key_pem);
    if (known !== undefined) {
      return $multi(known, undefined);
    }
  }
  const [cert, cert_err] = parse_pem_cert(cert_pem);
  if (cert === undefined) {
    return $multi(undefined, "load_pem_pair: cannot parse cert_pem: " + tostring(cert_err));
  }
  const [key, key_err] = parse_pem_priv_key(key_pem);
  if (key === undefined) {
    return $multi(undefined, "load_pem_pair: cannot parse key_pem: " + tostring(key_err));
  }
  const [, id_err] = client_identity(cert, key);
  if (id_err !== undefined) {
    return $multi(undefined, "load_pem_pair: " + id_err);
  }
  const pair: PemPair = { cert, key };
  remember_in(loaded, cert_pem, key_pem, pair);
  return $multi(pair, undefined);
}

export { load_pem_pair };
