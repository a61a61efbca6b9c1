--[[ countAttempt: add one settled attempt to its minute and hour counter buckets in one step.
KEYS[1] minute bucket hash, KEYS[2] hour bucket hash (same hash slot). ARGV: 1 outcome field
(s, f or r), 2 duration field (d0, d1, ...), 3 minute retention ms, 4 hour retention ms.
]]
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, ARGV[1], 1)
  redis.call('HINCRBY', key, ARGV[2], 1)
  redis.call('PEXPIRE', key, ARGV[2 + i])
end
return 1
