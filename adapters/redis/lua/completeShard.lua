--[[ completeShard: mark one shard of an iteration done, idempotently, and say whether all are.
A per-shard marker field (shard:<i>:done), never a bare counter: a duplicated shard delivery
finds its marker set and changes nothing, so finalize cannot come early, twice, or never.
KEYS[1] iteration hash. ARGV: 1 shard index, 2 now.
Returns {allDone (0/1), shardsDone} or {-1} when the iteration is gone.
]]
local key = KEYS[1]
local shard, now = ARGV[1], ARGV[2]
local shardCount = tonumber(redis.call('HGET', key, 'shardCount') or '-1')
if shardCount < 0 then return { -1 } end
if redis.call('HSETNX', key, 'shard:' .. shard .. ':done', now) == 1 then
  redis.call('HINCRBY', key, 'shardsDone', 1)
  redis.call('HSET', key, 'updatedAt', now)
end
local done = tonumber(redis.call('HGET', key, 'shardsDone') or '0')
if done >= shardCount then return { 1, done } end
return { 0, done }
