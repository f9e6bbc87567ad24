import * as ffi from "ffi";

/**
 * C declarations for the libcrypto functions we call through ffi.C (the libcrypto nginx is
 * linked with). Declarations only; the logic lives in crypto.ts and identity/ffi.ts.
 * OpenSSL 1.1.1 and 3.x export all of these.
 */
// One cdef per function: lua-resty-openssl or lua-resty-string may have declared some of them
// already, with typed pointers. LuaJIT refuses a redefinition, and the existing declaration
// accepts our `void *` arguments, so a failed cdef here is expected and harmless.
const DECLARATIONS = [
  "int OPENSSL_sk_num(const void *stack);",
  "void *OPENSSL_sk_value(const void *stack, int i);",
  "const void *EVP_sha256(void);",
  "int EVP_Digest(const void *data, size_t count, unsigned char *md, unsigned int *size, const void *type, void *impl);",
  "unsigned char *HMAC(const void *evp_md, const void *key, int key_len, const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);",
  "int X509_digest(const void *x509, const void *type, unsigned char *md, unsigned int *len);",
  "int X509_check_private_key(const void *x509, const void *pkey);",
  "void ERR_clear_error(void);",
  "int RAND_bytes(unsigned char *buf, int num);",
];
for (const declaration of DECLARATIONS) {
  pcall(ffi.cdef, declaration);
}

const SYMBOLS: (keyof ffi.Namespace)[] = [
  "OPENSSL_sk_num",
  "OPENSSL_sk_value",
  "EVP_sha256",
  "EVP_Digest",
  "HMAC",
  "X509_digest",
  "X509_check_private_key",
  "ERR_clear_error",
  "RAND_bytes",
];

function lookup(this: void, name: keyof ffi.Namespace): unknown {
  return ffi.C[name];
}

// undefined: not checked yet; false: every symbol resolved; a string: why libcrypto is unusable.
let problem: string | false | undefined;

/**
 * Why the libcrypto functions cannot be called in this process, or undefined when they can.
 * Resolves the symbols once, on first call.
 */
export function unavailable(): string | undefined {
  if (problem === undefined) {
    problem = false;
    for (const name of SYMBOLS) {
      const [ok] = pcall(lookup, name);
      if (!ok) {
        problem = "libcrypto function " + name + " not found in this nginx process";
        break;
      }
    }
  }
  if (problem === false) {
    return undefined;
  }
  return problem;
}
