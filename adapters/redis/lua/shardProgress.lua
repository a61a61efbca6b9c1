--[[ shardProgress: add a page of work to one shard's counters in one step.
KEYS[1] iteration hash. ARGV: 1 shard index, 2 processed delta, 3 errors delta, 4 now,
5 last error JSON ('' for none).
]]
local key = KEYS[1]
local shard, processed, errors, now, lastError = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', key) == 0 then return 0 end
local prefix = 'shard:' .. shard .. ':'
redis.call('HINCRBY', key, prefix .. 'processed', processed)
redis.call('HINCRBY', key, prefix .. 'errors', errors)
redis.call('HSETNX', key, prefix .. 'startedAt', now)
if lastError ~= '' then redis.call('HSET', key, prefix .. 'lastError', lastError) end
redis.call('HSET', key, 'updatedAt', now)
return 1
