--[[ findByReference: the newest task created with a reference, read with the reference in one
step (the reference names its record's key, in the same slot).
KEYS[1] reference. Returns the record's fields, or an empty list.
]]
local recordKey = redis.call('HGET', KEYS[1], 'key')
if not recordKey then return {} end
return redis.call('HGETALL', recordKey)
