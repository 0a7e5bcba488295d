-- Take back each dedup key of KEYS that is done (or free, or ours
-- already), for a record whose processing Kafka lost (see
-- Store.RetakeDone).
-- ARGV[1] token of this attempt; ARGV[2] lease in ms.
-- Returns one code per key: 0 taken, 2 busy (another attempt's live lease).
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if not v or string.sub(v, 1, 4) == 'done' or v == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 0
  else
    out[i] = 2
  end
end
return out
