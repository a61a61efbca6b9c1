-- Shared by the record scripts (inlined where a script says "--@include records").
-- Records are hashes whose numbers the adapter wrote as decimal text (see codec.ts).

local FINISHED = { succeeded = true, failed = true, cancelled = true }

-- The record and the reference it holds live until expiresAt (retention). The reference is only
-- extended while it still points at this record; a newer task may have taken it over.
local function setRetention(recordKey, id, expiresAt)
  local referenceKey = redis.call('HGET', recordKey, '_ref')
  if referenceKey and redis.call('HGET', referenceKey, 'id') == id then
    redis.call('PEXPIREAT', referenceKey, expiresAt)
  end
  redis.call('PEXPIREAT', recordKey, expiresAt)
end

-- History is one JSON attempt per line: append, then keep the newest maxHistory lines.
local function appendHistory(recordKey, attemptJson, maxHistory)
  local entries = {}
  local history = redis.call('HGET', recordKey, 'history')
  if history and history ~= '' then
    for line in string.gmatch(history, '[^\n]+') do entries[#entries + 1] = line end
  end
  entries[#entries + 1] = attemptJson
  redis.call('HSET', recordKey, 'history', table.concat(entries, '\n', math.max(1, #entries - maxHistory + 1)))
end
