/**
 * Bounded caches for what is derived from caller input (tokens, checked strings, credential
 * digests, pool names). A cache forgets everything once it holds `max` entries, so hosts or
 * certificates chosen per request cannot make a worker's memory grow; emptying it costs one
 * rebuild per entry in use, and no per-entry bookkeeping is done on a hit. Callers do not keep
 * string keys longer than LONGEST_KEY: those are recomputed on every call.
 */
const LONGEST_KEY = 255;

interface Bounded<K extends AnyNotNil, V> {
  entries: LuaTable<K, V>;
  /** entries stored since the cache was last emptied (a replaced key counts again) */
  count: number;
  max: number;
  /** weak keys: an entry goes with its key object (for caches keyed by cdata) */
  weak: boolean;
}

const WEAK_KEYS = { __mode: "k" as const };

function empty<K extends AnyNotNil, V>(weak: boolean): LuaTable<K, V> {
  const entries = new LuaTable<K, V>();
  return weak ? setmetatable(entries, WEAK_KEYS) : entries;
}

function new_bounded<K extends AnyNotNil, V>(max: number, weak = false): Bounded<K, V> {
  return { entries: empty<K, V>(weak), count: 0, max, weak };
}

/** cache[key] = value, emptying the cache first when it is full. */
function remember<K extends AnyNotNil, V>(cache: Bounded<K, V>, key: K, value: V): void {
  if (cache.count >= cache.max) {
    cache.entries = empty<K, V>(cache.weak);
    cache.count = 0;
  }
  cache.entries.set(key, value);
  cache.count += 1;
}

export { LONGEST_KEY, Bounded, new_bounded, remember };
