-- Newest-wins compare-and-set of one entity.
-- KEYS[1] entity hash; ARGV[1] event time (unix microseconds, decimal);
-- ARGV[2] event id; ARGV[3] state bytes.
-- Returns 0 applied (not older than the stored time), 1 stale (older).
-- Times are compared as Lua numbers (doubles): exact while |ts| <= 2^53,
-- which the Go side enforces.
local cur = redis.call('HGET', KEYS[1], 'ts')
if cur and tonumber(ARGV[1]) < tonumber(cur) then
  return 1
end
redis.call('HSET', KEYS[1], 'ts', ARGV[1], 'event_id', ARGV[2], 'state', ARGV[3])
return 0
