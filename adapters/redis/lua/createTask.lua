--[[ createTask: write a new task record, claiming its reference in the same atomic step, and
optionally (for a defer staged in a MULTI) its outbox entry and payload, which must only exist
when the record does.

ARGV[1] names the optional parts present: 'r' reference, 'o' outbox, 'p' payload, 'i' indexes.
KEYS, in order: record; reference (r); outbox index, outbox entries (o); payload (p);
  then (i, single-node Redis only): expiry index, status index, all, queue, task name,
  [reference index], [iteration index].
ARGV: 1 parts, 2 id, 3 now, 4 expiresAt, 5 record key as stored in the reference,
  6 reference key as stored in the record, 7 index member, 8 sweep member,
  9 outbox createdAt, 10 outbox entry (JSON), 11 payload ttl ms, 12 payload bytes,
  13.. record field/value pairs.
Returns {'created'}, {'exists'} (the id is taken) or {'held', <holder's fields...>}.
]]
--@include records

local parts = ARGV[1]
local function has(part) return string.find(parts, part, 1, true) ~= nil end
local nextKey = 1
local function takeKey()
  local key = KEYS[nextKey]
  nextKey = nextKey + 1
  return key
end

local recordKey = takeKey()
local id, now, expiresAt = ARGV[2], tonumber(ARGV[3]), ARGV[4]

if redis.call('EXISTS', recordKey) == 1 then return { 'exists' } end

if has('r') then
  local referenceKey = takeKey()
  -- The reference blocks while its newest task is unfinished and still unique.
  local holderKey = redis.call('HGET', referenceKey, 'key')
  if holderKey then
    local status, uniqueUntil = unpack(redis.call('HMGET', holderKey, 'status', 'uniqueUntil'))
    if status and not FINISHED[status] and (not uniqueUntil or tonumber(uniqueUntil) > now) then
      local reply = redis.call('HGETALL', holderKey)
      table.insert(reply, 1, 'held')
      return reply
    end
  end
  redis.call('DEL', referenceKey)
  redis.call('HSET', referenceKey, 'id', id, 'key', ARGV[5])
  redis.call('PEXPIREAT', referenceKey, expiresAt)
  redis.call('HSET', recordKey, '_ref', ARGV[6])
end

redis.call('HSET', recordKey, '_sweep', ARGV[8], unpack(ARGV, 13))

if has('o') then
  local outboxIndex, outboxEntries = takeKey(), takeKey()
  redis.call('HSET', outboxEntries, id, ARGV[10])
  redis.call('ZADD', outboxIndex, ARGV[9], id)
end

if has('p') then
  redis.call('SET', takeKey(), ARGV[12], 'PX', ARGV[11])
end

if has('i') then
  local expiryIndex = takeKey()
  redis.call('ZADD', expiryIndex, expiresAt, ARGV[8])
  for position = nextKey, #KEYS do redis.call('ZADD', KEYS[position], 0, ARGV[7]) end
end

-- Last, so that an expiresAt already in the past removes the record like any expired one.
redis.call('PEXPIREAT', recordKey, expiresAt)
return { 'created' }
