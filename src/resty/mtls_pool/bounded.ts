/**
 * Bounded caches for what is derived from caller input (tokens, checked strings, credential
 * digests, pool names, TLS sessions). A cache forgets everything once it holds `max` entries, so
 * hosts or certificates chosen per request cannot make a worker's memory grow; emptying it costs
 * one rebuild per entry in use, and no per-entry bookkeeping is done on a hit. String keys
 * longer than LONGEST_KEY are not kept (their values are recomputed on every call): remember()
 * and keeps() apply that rule, so callers never check a key's length themselves.
 */
const LONGEST_KEY = 255;

interface Bounded<K extends AnyNotNil, V> {
  entries: LuaTable<K, V>;
  count: number;
  max: number;
  weak: boolean;
}

const WEAK_KEYS = { __mode: "k" as const };

function empty<K extends AnyNotNil, V>(weak: boolean): LuaTable<K, V> {
  const entries = new LuaTable<K, V>();
  return weak ? setmetatable(entries, WEAK_KEYS) : entries;
}

/**
 * An empty cache of at most `max` entries. `count` is the number of entries stored since the
 * cache was last emptied (a replaced key counts again); `weak`: weak keys, an entry goes with its
 * key object (for caches keyed by cdata).
 */
function new_bounded<K extends AnyNotNil, V>(max: number, weak = false): Bounded<K, V> {
  return { entries: empty<K, V>(weak), count: 0, max, weak };
}

/** Whether a cache keeps entries under `key`: not for strings longer than LONGEST_KEY. */
function keeps(key: AnyNotNil): boolean {
  return typeof key !== "string" || key.length <= LONGEST_KEY;
}

/** cache[key] = value, emptying the cache first when it is full; a key keeps() refuses is not kept. */
function remember<K extends AnyNotNil, V>(cache: Bounded<K, V>, key: K, value: V): void {
  if (!keeps(key)) {
    return;
  }
  if (cache.count >= cache.max) {
    cache.entries = empty<K, V>(cache.weak);
    cache.count = 0;
  }
  cache.entries.set(key, value);
  cache.count += 1;
}

export { Bounded, new_bounded, keeps, remember };
