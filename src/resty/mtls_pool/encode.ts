/**
 * Pool-name encoding: pure string work, no ngx, no FFI.
 *
 * A name is VERSION followed by one token per field, joined with "|"; a name inside a caller's
 * pool (options.pool) is NAMESPACED followed by the caller's name and the TLS fields. A token is:
 *   nil -> "~"    true -> "+"    false -> "!"    "" -> '""'    integer n -> "#n"
 *   a non-empty string -> the string with every byte outside [A-Za-z0-9._:/[]-] written %XX.
 * No escaped string contains "|", "~", "+", "!", '"' or "#", and no token is empty, so the
 * token list (and with it the field tuple) can be read back from the name: the encoding is
 * injective. Names longer than MAX_LENGTH are replaced by HASHED_PREFIX .. sha256(name) ..
 * a readable head; unhashed names start with VERSION .. "|" or NAMESPACED .. "|", so the three
 * forms never meet.
 */
import { new_bounded, remember } from "./bounded";

const concat = table.concat;
const byte = string.byte;
const find = string.find;
const format = string.format;
const gsub = string.gsub;
const sub = string.sub;

const VERSION = "mtls1";
const HASHED_PREFIX = "mtls1~";
const NAMESPACED = "mtls1@";
/** Longest name kept as is; longer ones are hashed. */
const MAX_LENGTH = 512;
/** How much of a hashed name's original stays readable, for debugging. */
const HEAD_LENGTH = 160;

// Explicit ranges, not %w: that class follows the C locale.
const UNSAFE = "[^0-9A-Za-z._:/%[%]%-]";

function escape_byte(this: void, c: string): string {
  return format("%%%02X", byte(c));
}

function escape(value: string): string {
  if (value === "") {
    return '""';
  }
  const [unsafe_at] = find(value, UNSAFE);
  if (unsafe_at === undefined) {
    return value;
  }
  const [escaped] = gsub(value, UNSAFE, escape_byte);
  return escaped;
}

// Tokens of recent strings and numbers, so that building a name costs table lookups rather
// than pattern scans (string.find with a pattern also stops LuaJIT's trace compiler).
const tokens = new_bounded<string | number, string>(1024);

/** The token for one field value; see the module comment. */
function token(value: string | number | boolean | undefined): string {
  if (value === undefined) {
    return "~";
  }
  if (typeof value === "boolean") {
    return value ? "+" : "!";
  }
  const known = tokens.entries.get(value);
  if (known !== undefined) {
    return known;
  }
  const fresh = typeof value === "number" ? format("#%d", value) : escape(value);
  remember(tokens, value, fresh);
  return fresh;
}

// Reused for every name: a name is built without yielding, so one buffer per worker is safe.
const parts: string[] = [VERSION];

/**
 * The unbounded name for one field tuple. Field order is part of the format: changing it
 * means a new VERSION.
 */
function fields(
  scheme: string | undefined,
  host: string,
  port: number | undefined,
  ssl: boolean,
  server_name: string | boolean | undefined,
  verify: boolean | undefined,
  proxy_uri: string | undefined,
  proxy_credentials: string | undefined,
  identity: string | undefined,
): string {
  parts[1] = token(scheme);
  parts[2] = token(host);
  parts[3] = token(port);
  parts[4] = token(ssl);
  parts[5] = token(server_name);
  parts[6] = token(verify);
  parts[7] = token(proxy_uri);
  parts[8] = token(proxy_credentials);
  parts[9] = token(identity);
  return concat(parts, "|");
}

// The same, for names inside a caller's pool.
const namespaced_parts: string[] = [NAMESPACED];

/**
 * The unbounded name inside the caller's pool `pool`: the caller chose which hosts and proxies
 * share it, while TLS, the SNI name, verification, the proxy credentials and the client identity
 * still separate connections within it.
 */
function namespaced(
  pool: string,
  ssl: boolean,
  server_name: string | boolean | undefined,
  verify: boolean | undefined,
  proxy_credentials: string | undefined,
  identity: string | undefined,
): string {
  namespaced_parts[1] = token(pool);
  namespaced_parts[2] = token(ssl);
  namespaced_parts[3] = token(server_name);
  namespaced_parts[4] = token(verify);
  namespaced_parts[5] = token(proxy_credentials);
  namespaced_parts[6] = token(identity);
  return concat(namespaced_parts, "|");
}

/**
 * The stand-in for a name longer than MAX_LENGTH: HASHED_PREFIX, the hex SHA-256 of the
 * whole name, "|" and the first HEAD_LENGTH bytes after the version.
 */
function hashed(name: string, sha256_hex: string): string {
  return HASHED_PREFIX + sha256_hex + "|" + sub(name, VERSION.length + 2, VERSION.length + 1 + HEAD_LENGTH);
}

export { VERSION, HASHED_PREFIX, NAMESPACED, MAX_LENGTH, token, fields, namespaced, hashed };
