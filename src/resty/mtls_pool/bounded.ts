/**
 * Bounded caches for what is derived from caller input (tokens, checked strings, credential
 * digests, pool names, TLS sessions). A cache forgets everything once it holds `max` entries, so
 * hosts or certificates chosen per request cannot make a worker's memory grow; emptying it costs
 * one rebuild per entry in use, and no per-entry bookkeeping is done on a hit. String keys
 * longer than a cache's `longest` (LONGEST_KEY unless it was made for long keys) are not kept
 * (their values are recomputed on every call): remember() and keeps() apply that rule, so
 * callers never check a key's length themselves.
 */
const LONGEST_KEY = 255;

interface Bounded<K extends AnyNotNil, V> {
  entries: LuaTable<K, V>;
  count: number;
  max: number;
  weak: boolean;
  longest: number;
}

const WEAK_KEYS = { __mode: "k" as const };

/** A new table with weak keys: an entry goes with its key object (cdata, tables). */
function weak_keys<K extends AnyNotNil, V>(): LuaTable<K, V> {
  return setmetatable(new LuaTable<K, V>(), WEAK_KEYS);
}

function empty<K extends AnyNotNil, V>(weak: boolean): LuaTable<K, V> {
  return weak ? weak_keys<K, V>() : new LuaTable<K, V>();
}

/**
 * An empty cache of at most `max` entries. `count` is the number of entries stored since the
 * cache was last emptied (a replaced key counts again); `weak`: weak keys, an entry goes with its
 * key object (for caches keyed by cdata); `longest`: the longest string key kept.
 */
function new_bounded<K extends AnyNotNil, V>(max: number, weak = false, longest = LONGEST_KEY): Bounded<K, V> {
  return { entries: empty<K, V>(weak), count: 0, max, weak, longest };
}

/** Whether `cache` keeps entries under `key`: not for strings longer than its `longest`. */
function keeps<K extends AnyNotNil, V>(cache: Bounded<K, V>, key: AnyNotNil): boolean {
  return typeof key !== "string" || key.length <= cache.longest;
}

/** cache[key] = value, emptying the cache first when it is full; a key keeps() refuses is not kept. */
function remember<K extends AnyNotNil, V>(cache: Bounded<K, V>, key: K, value: V): void {
  if (!keeps(cache, key)) {
    return;
  }
  if (cache.count >= cache.max) {
    cache.entries = empty<K, V>(cache.weak);
    cache.count = 0;
  }
  cache.entries.set(key, value);
  cache.count += 1;
}

/**
 * cache[outer][inner] = value for a cache of tables, counting each inner entry against `max`;
 * keys keeps() refuses are not kept.
 */
function remember_in<K1 extends AnyNotNil, K2 extends AnyNotNil, V>(
  cache: Bounded<K1, LuaTable<K2, V>>,
  outer: K1,
  inner: K2,
  value: V,
): void {
  if (!keeps(cache, outer) || !keeps(cache, inner)) {
    return;
  }
  let table = cache.entries.get(outer);
  if (table === undefined || cache.count >= cache.max) {
    table = new LuaTable<K2, V>();
    remember(cache, outer, table); // counts the entry set below
  } else {
    cache.count += 1;
  }
  table.set(inner, value);
}

export { Bounded, new_bounded, keeps, remember, remember_in, weak_keys };
