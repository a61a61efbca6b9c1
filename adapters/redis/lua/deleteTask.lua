--[[ deleteTask: remove a record and free its reference if it still holds it (the undo of a
failed defer), atomically so that no other task's claim on the reference is lost.
KEYS[1] record. ARGV[1] id.
Returns the removed record's fields (empty when there was none), for the index clean-up.
]]
local recordKey, id = KEYS[1], ARGV[1]
local fields = redis.call('HGETALL', recordKey)
if #fields == 0 then return fields end
local referenceKey = redis.call('HGET', recordKey, '_ref')
if referenceKey and redis.call('HGET', referenceKey, 'id') == id then redis.call('DEL', referenceKey) end
redis.call('DEL', recordKey)
return fields
