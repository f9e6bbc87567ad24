local ____exports = {}
--- Bounded caches for what is derived from caller input (tokens, checked strings, credential
-- digests, pool names). A cache forgets everything once it holds `max` entries, so hosts or
-- certificates chosen per request cannot make a worker's memory grow; emptying it costs one
-- rebuild per entry in use, and no per-entry bookkeeping is done on a hit. Callers do not keep
-- string keys longer than LONGEST_KEY: those are recomputed on every call.
local LONGEST_KEY = 255
local WEAK_KEYS = {__mode = "k"}
local function empty(weak)
    local entries = {}
    return weak and setmetatable(entries, WEAK_KEYS) or entries
end
local function new_bounded(max, weak)
    if weak == nil then
        weak = false
    end
    return {
        entries = empty(weak),
        count = 0,
        max = max,
        weak = weak
    }
end
--- cache[key] = value, emptying the cache first when it is full.
local function remember(cache, key, value)
    if cache.count >= cache.max then
        cache.entries = empty(cache.weak)
        cache.count = 0
    end
    cache.entries[key] = value
    cache.count = cache.count + 1
end
____exports.LONGEST_KEY = LONGEST_KEY
____exports.new_bounded = new_bounded
____exports.remember = remember
return ____exports
