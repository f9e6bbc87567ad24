--- Bounded caches for what is derived from caller input (tokens, checked strings, credential
-- digests, pool names, TLS sessions). A cache forgets everything once it holds `max` entries, so
-- hosts or certificates chosen per request cannot make a worker's memory grow; emptying it costs
-- one rebuild per entry in use, and no per-entry bookkeeping is done on a hit. String keys
-- longer than a cache's `longest` (LONGEST_KEY unless it was made for long keys) are not kept
-- (their values are recomputed on every call): remember() and keeps() apply that rule, so
-- callers never check a key's length themselves.
local _M = {}
local LONGEST_KEY = 255
local WEAK_KEYS = {__mode = "k"}

--- A new table with weak keys: an entry goes with its key object (cdata, tables).
local function weak_keys()
    return setmetatable({}, WEAK_KEYS)
end

local function empty(weak)
    return weak and weak_keys() or ({})
end

--- An empty cache of at most `max` entries. `count` is the number of entries stored since the
-- cache was last emptied (a replaced key counts again); `weak`: weak keys, an entry goes with its
-- key object (for caches keyed by cdata); `longest`: the longest string key kept.
local function new_bounded(max, weak, longest)
    if weak == nil then
        weak = false
    end
    if longest == nil then
        longest = LONGEST_KEY
    end
    return {entries = empty(weak), count = 0, max = max, weak = weak, longest = longest}
end

--- Whether `cache` keeps entries under `key`: not for strings longer than its `longest`.
local function keeps(cache, key)
    return type(key) ~= "string" or #key <= cache.longest
end

--- cache[key] = value, emptying the cache first when it is full; a key keeps() refuses is not kept.
local function remember(cache, key, value)
    if not keeps(cache, key) then
        return
    end
    if cache.count >= cache.max then
        cache.entries = empty(cache.weak)
        cache.count = 0
    end
    cache.entries[key] = value
    cache.count = cache.count + 1
end

--- cache[outer][inner] = value for a cache of tables, counting each inner entry against `max`;
-- keys keeps() refuses are not kept.
local function remember_in(cache, outer, inner, value)
    if not keeps(cache, outer) or not keeps(cache, inner) then
        return
    end
    local ____table = cache.entries[outer]
    if ____table == nil or cache.count >= cache.max then
        ____table = {}
        remember(cache, outer, ____table) -- counts the entry set below
    else
        cache.count = cache.count + 1
    end
    ____table[inner] = value
end

_M.new_bounded = new_bounded
_M.keeps = keeps
_M.remember = remember
_M.remember_in = remember_in
_M.weak_keys = weak_keys

return _M
