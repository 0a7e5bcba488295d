-- Newest-wins compare-and-set of each entity hash of KEYS, in order.
-- ARGV[1] the entity retention in ms, 0 for none. For KEYS[i],
-- ARGV[3i-1] event time (unix microseconds, decimal), ARGV[3i] event id,
-- ARGV[3i+1] state bytes.
-- Returns one code per key: 0 applied (not older than the stored time),
-- 1 stale (older). Times are compared as Lua numbers (doubles): exact while
-- |ts| <= 2^53, which the Go side enforces.
-- Every key touched, applied or stale, gets the retention as its TTL: an
-- entity is forgotten once no event of it came for that long. Without
-- one, a TTL left from a retention since turned off is removed.
-- A key that is not a hash, or a stored ts that is not decimal unix
-- microseconds (not written by Inlet: Lua would read "1.7e15" or "0x10" as
-- a number, and a date as nothing), fails the call naming the key, as
-- Store.EntityTimes refuses it: the keys before it in KEYS are applied.
local retention = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local ts = ARGV[3 * i - 1]
  local cur = redis.pcall('HGET', key, 'ts')
  if type(cur) == 'table' and cur.err then
    return redis.error_reply(cur.err .. ' (entity hash ' .. key .. ')')
  end
  if cur and not string.find(cur, '^[-+]?%d+$') then
    return redis.error_reply('ERR entity hash ' .. key .. ' holds ts "' .. string.sub(cur, 1, 64) .. '", not decimal unix microseconds: not written by Inlet')
  end
  if cur and tonumber(ts) < tonumber(cur) then
    out[i] = 1
  else
    redis.call('HSET', key, 'ts', ts, 'event_id', ARGV[3 * i], 'state', ARGV[3 * i + 1])
    out[i] = 0
  end
  if retention > 0 then
    redis.call('PEXPIRE', key, retention)
  else
    redis.call('PERSIST', key)
  end
end
return out
