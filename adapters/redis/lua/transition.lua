--[[ transition: compare-and-set move of a record's status with a patch. The adapter passes
only the current statuses from which both the caller and the lifecycle (TRANSITIONS) allow the
move, so a stale writer, or an illegal move, changes nothing.
KEYS[1] record; KEYS[2..8] indexes (single-node Redis only).
ARGV: 1 allowed current statuses (space separated), 2 target status, 3 now,
  4 '1' when the target is finished, 5 new expiresAt rounded up to whole ms, or '', 6 n = number of fields to set,
  7 .. 6+2n field/value pairs, then the fields to delete.
Returns {'moved', previousStatus, <record fields...>} or {'refused'}.
]]
--@include records
--@include indexes

local recordKey = KEYS[1]
local to, now, expiresAt = ARGV[2], ARGV[3], ARGV[5]

local current, id = unpack(redis.call('HMGET', recordKey, 'status', 'id'))
if not current or not string.find(' ' .. ARGV[1] .. ' ', ' ' .. current .. ' ', 1, true) then
  return { 'refused' }
end

local setCount = tonumber(ARGV[6])
if setCount > 0 then redis.call('HSET', recordKey, unpack(ARGV, 7, 6 + 2 * setCount)) end
if #ARGV > 6 + 2 * setCount then redis.call('HDEL', recordKey, unpack(ARGV, 7 + 2 * setCount)) end
redis.call('HSET', recordKey, 'status', to, 'updatedAt', now)
redis.call('HINCRBY', recordKey, 'version', 1)
if to ~= 'running' then redis.call('HDEL', recordKey, 'leaseOwner', 'leaseUntil') end
if ARGV[4] == '1' then redis.call('HSETNX', recordKey, 'finishedAt', now) end
moveStatusIndex(recordKey, current, to)
if expiresAt ~= '' then rescheduleSweep(recordKey, expiresAt) end

local reply = redis.call('HGETALL', recordKey)
if expiresAt ~= '' then setRetention(recordKey, id, expiresAt) end
table.insert(reply, 1, current)
table.insert(reply, 1, 'moved')
return reply
