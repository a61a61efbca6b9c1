--[[ commit: apply every write, or none when a document's version is not the one expected.
KEYS: the n documents, then one key per op.
ARGV[1] n; then 4 per write: expected version ('0': must be absent), value JSON ('': delete),
  expiresAt ms ('': none), status ('': not a task); then 5 per op: write number, condition,
  command ('a' ZADD, 'r' ZREM, 'p' SET PX), score (or ttl), member (or bytes).
An op runs when its condition holds for its document's state before the write: '*' always,
'c' it was absent, 's' its status changes, 'e' its expiresAt changes, a status name: it leaves
that status. The adapter decides which index entries a value needs; this only compares.
Returns {0}, or {1} and per write its status, expiresAt and '1' when it was absent, before.
]]
local n = tonumber(ARGV[1])
local before = {}
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local v, s, e = unpack(redis.call('HMGET', KEYS[i], 'v', 's', 'e'))
  if (v or '0') ~= ARGV[a] then return { 0 } end
  before[i] = { s or '', e or '', v and '0' or '1' }
end

local reply = { 1 }
for i = 1, n do
  local a = 2 + (i - 1) * 4
  local key, value, expiresAt = KEYS[i], ARGV[a + 1], ARGV[a + 2]
  if value == '' then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'v', tostring(tonumber(ARGV[a]) + 1), 'd', value, 's', ARGV[a + 3], 'e', expiresAt)
    -- After the value: an expiresAt already past removes the document like any expired one.
    if expiresAt ~= '' then redis.call('PEXPIREAT', key, expiresAt) else redis.call('PERSIST', key) end
  end
  for _, field in ipairs(before[i]) do reply[#reply + 1] = field end
end

local first = 2 + n * 4
for k = 0, (#ARGV - first + 1) / 5 - 1 do
  local a = first + k * 5
  local w, cond, command = tonumber(ARGV[a]), ARGV[a + 1], ARGV[a + 2]
  local old, status, expiresAt = before[w], ARGV[w * 4 + 1], ARGV[w * 4]
  local holds = cond == '*' or (cond == 'c' and old[3] == '1') or (cond == 's' and old[1] ~= status)
    or (cond == 'e' and old[2] ~= expiresAt) or (old[1] == cond and status ~= cond)
  if holds then
    local key = KEYS[n + k + 1]
    if command == 'a' then redis.call('ZADD', key, ARGV[a + 3], ARGV[a + 4])
    elseif command == 'r' then redis.call('ZREM', key, ARGV[a + 4])
    else redis.call('SET', key, ARGV[a + 4], 'PX', ARGV[a + 3]) end
  end
end
return reply
