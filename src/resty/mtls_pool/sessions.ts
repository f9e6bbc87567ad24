/**
 * TLS sessions and the pool they were made in. A resumed session carries the client identity,
 * SNI name and verification of the handshake that made it, whatever certificate the resuming
 * connect sets: so a session resumes only in the pool (which names all three) it came from, and
 * one this module never saw is not used at all.
 */
import { new_bounded, remember } from "./bounded";

const ngx_log = ngx.log;
const DEBUG = ngx.DEBUG;

// session cdata -> pool name, per worker. Weak keys: an entry goes with the session object;
// bounded: an application that keeps every session cannot grow it past the limit (a forgotten
// session only costs a full handshake).
const made_in = new_bounded<SslSession, string>(4096, true);

/** Records that `session` was made by a handshake on a connection of pool `pool`. */
function bind(session: SslSession, pool: string): void {
  remember(made_in, session, pool);
}

/**
 * The session to hand to sslhandshake for a fresh connection of pool `pool`: `reused` itself
 * when it was made in that pool (or is nil or false), else nil, for a full handshake.
 */
function usable(reused: unknown, pool: string, pool_debug: unknown): SslSession | false | undefined {
  if (reused === undefined || reused === false) {
    return reused;
  }
  const pool_of_session = made_in.entries.get(reused as SslSession);
  if (pool_of_session === pool) {
    return reused as SslSession;
  }
  if (pool_debug) {
    if (pool_of_session === undefined) {
      ngx_log(DEBUG, "mtls_pool: ssl_reused_session not used: resty.mtls_pool did not make it");
    } else {
      ngx_log(DEBUG, "mtls_pool: ssl_reused_session not used: it was made for another pool");
    }
  }
  return undefined;
}

export { bind, usable };
