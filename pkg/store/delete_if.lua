-- Delete each entity hash of KEYS whose event_id is ARGV[i], atomically per
-- key: an entity a newer event was applied to since the caller looked is
-- kept.
-- Returns one code per key: 1 deleted, 0 kept (another event's state, or
-- none).
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('HGET', key, 'event_id') == ARGV[i] then
    out[i] = redis.call('DEL', key)
  else
    out[i] = 0
  end
end
return out
