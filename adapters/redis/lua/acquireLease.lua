--[[ acquireLease: the execution guard. queued | retrying | running-with-expired-lease -> running
with a lease for the caller, in one atomic step so that exactly one concurrent caller wins.
KEYS[1] record; KEYS[2..8] indexes (single-node Redis only, see includes/indexes.lua).
ARGV: 1 owner, 2 now, 3 leaseUntil, 4 executionCount.
Returns {outcome, previousStatus, <record fields...>}, outcome one of 'acquired', 'finished',
'busy'; or {'missing'}.
]]
--@include records
--@include indexes

local recordKey = KEYS[1]
local owner, now, leaseUntil, executionCount = ARGV[1], ARGV[2], ARGV[3], ARGV[4]

local status, currentLeaseUntil, currentOwner = unpack(redis.call('HMGET', recordKey, 'status', 'leaseUntil', 'leaseOwner'))
if not status then return { 'missing' } end

local outcome = 'acquired'
if FINISHED[status] then
  outcome = 'finished'
elseif status == 'running' and currentOwner == owner then
  -- The same caller asking again (its first reply was lost): it already holds the lease.
  outcome = 'acquired'
elseif status == 'running' and tonumber(currentLeaseUntil or '0') > tonumber(now) then
  outcome = 'busy'
else
  redis.call('HSET', recordKey, 'status', 'running', 'leaseOwner', owner, 'leaseUntil', leaseUntil,
    'executionCount', executionCount, 'updatedAt', now)
  redis.call('HSETNX', recordKey, 'startedAt', now)
  redis.call('HINCRBY', recordKey, 'attempts', 1)
  redis.call('HINCRBY', recordKey, 'version', 1)
  moveStatusIndex(recordKey, status, 'running')
end

local reply = redis.call('HGETALL', recordKey)
table.insert(reply, 1, status)
table.insert(reply, 1, outcome)
return reply
