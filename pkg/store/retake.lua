-- Take back each dedup key of KEYS that is done, for a record whose
-- processing Kafka lost (see Store.RetakeDone).
-- ARGV[1] token of this attempt; ARGV[2] lease in ms.
-- Returns one code per key: 0 taken (it was done, or is ours already),
-- 2 busy (another attempt's live lease), 3 free (taken too: SET NX).
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == 'done' or v == ARGV[1] then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 0
  elseif v then
    out[i] = 2
  else
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    out[i] = 3
  end
end
return out
