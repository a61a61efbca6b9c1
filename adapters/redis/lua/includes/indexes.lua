-- Single-node Redis only: the listing indexes change in the same script as the record, so they
-- are exact. On Cluster those keys live in other slots: the adapter passes only KEYS[1] and writes
-- the indexes itself from the script's answer.
-- KEYS[2] is the expiry index, KEYS[3..8] the status indexes in this order (STATUS_INDEX_ORDER):
local STATUS_KEY_POSITION = { queued = 3, running = 4, retrying = 5, succeeded = 6, failed = 7, cancelled = 8 }
local INDEXED = #KEYS >= 8

-- Member of a record in the lexicographic indexes: 15-digit createdAt, ':' and the id.
local function indexMember(recordKey)
  local createdAt, id = unpack(redis.call('HMGET', recordKey, 'createdAt', 'id'))
  return string.rep('0', 15 - #createdAt) .. createdAt .. ':' .. id
end

local function moveStatusIndex(recordKey, from, to)
  if not INDEXED or from == to then return end
  local member = indexMember(recordKey)
  redis.call('ZREM', KEYS[STATUS_KEY_POSITION[from]], member)
  redis.call('ZADD', KEYS[STATUS_KEY_POSITION[to]], 0, member)
end

-- The expiry index tells the sweeper when a record's index entries become garbage.
local function rescheduleSweep(recordKey, expiresAt)
  if not INDEXED then return end
  redis.call('ZADD', KEYS[2], expiresAt, redis.call('HGET', recordKey, '_sweep'))
end
