--[[ settle: record the outcome of a run. Compare-and-set on the lease: only the owner of the
running record may write, so a stale runner whose lease was taken over changes nothing.
KEYS[1] record; KEYS[2..8] indexes (single-node Redis only).
ARGV: 1 owner, 2 status, 3 now, 4 attempt (JSON), 5 error (JSON or ''), 6 expiresAt,
  7 durationMs, 8 max history length, 9 '1' when the status is finished,
  10 expiresAt rounded up to whole milliseconds (for PEXPIREAT).
Returns {'settled', 'running', <record fields...>} or {'refused'}.
]]
--@include records
--@include indexes

local recordKey = KEYS[1]
local owner, status, now, expiresAt, deadline = ARGV[1], ARGV[2], ARGV[3], ARGV[6], ARGV[10]

local current, leaseOwner, id = unpack(redis.call('HMGET', recordKey, 'status', 'leaseOwner', 'id'))
if current ~= 'running' or leaseOwner ~= owner then return { 'refused' } end

redis.call('HSET', recordKey, 'status', status, 'durationMs', ARGV[7], 'updatedAt', now, 'expiresAt', expiresAt)
redis.call('HDEL', recordKey, 'leaseOwner', 'leaseUntil')
if ARGV[5] ~= '' then redis.call('HSET', recordKey, 'lastError', ARGV[5]) end
appendHistory(recordKey, ARGV[4], tonumber(ARGV[8]))
if ARGV[9] == '1' then redis.call('HSET', recordKey, 'finishedAt', now) end
redis.call('HINCRBY', recordKey, 'version', 1)
moveStatusIndex(recordKey, 'running', status)
rescheduleSweep(recordKey, deadline)

local reply = redis.call('HGETALL', recordKey)
-- After reading: a retention deadline in the past removes the record at once.
setRetention(recordKey, id, deadline)
table.insert(reply, 1, 'running')
table.insert(reply, 1, 'settled')
return reply
