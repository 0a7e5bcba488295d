-- Newest-wins compare-and-set of each entity hash of KEYS, in order.
-- For KEYS[i], ARGV[3i-2] event time (unix microseconds, decimal),
-- ARGV[3i-1] event id, ARGV[3i] state bytes.
-- Returns one code per key: 0 applied (not older than the stored time),
-- 1 stale (older). Times are compared as Lua numbers (doubles): exact while
-- |ts| <= 2^53, which the Go side enforces.
local out = {}
for i, key in ipairs(KEYS) do
  local ts = ARGV[3 * i - 2]
  local cur = redis.call('HGET', key, 'ts')
  if cur and tonumber(ts) < tonumber(cur) then
    out[i] = 1
  else
    redis.call('HSET', key, 'ts', ts, 'event_id', ARGV[3 * i - 1], 'state', ARGV[3 * i])
    out[i] = 0
  end
end
return out
