-- Newest-wins compare-and-set of each entity hash of KEYS, in order.
-- ARGV[1] the entity retention in ms, 0 for none. For KEYS[i],
-- ARGV[4i-2] event time and ARGV[4i-1] receive time (unix microseconds,
-- decimal; the receive time empty when unknown), ARGV[4i] event id,
-- ARGV[4i+1] state bytes.
-- Returns one code per key: 0 applied, 1 stale. An update is stale when
-- its event time is before the stored one, or equal to it and both have a
-- receive time and its own is before the stored one: of two events of one
-- time, the one received later wins, whatever the order they come in. The
-- same event again (its receive time equal) applies. Times are compared as
-- Lua numbers (doubles): exact while |ts| <= 2^53, which the Go side
-- enforces.
-- Every key touched, applied or stale, gets the retention as its TTL: an
-- entity is forgotten once no event of it came for that long. Without
-- one, a TTL left from a retention since turned off is removed.
-- A key that is not a hash, or a stored ts or rcv that is not decimal unix
-- microseconds (not written by Inlet: Lua would read "1.7e15" or "0x10" as
-- a number, and a date as nothing), fails the call naming the key, as
-- Store.EntityTimes refuses it: the keys before it in KEYS are applied.
local retention = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local ts, rcv = ARGV[4 * i - 2], ARGV[4 * i - 1]
  local cur = redis.pcall('HMGET', key, 'ts', 'rcv')
  if cur.err then
    return redis.error_reply(cur.err .. ' (entity hash ' .. key .. ')')
  end
  local curTS, curRcv = cur[1], cur[2]
  for _, v in ipairs({curTS, curRcv}) do
    if v and not string.find(v, '^[-+]?%d+$') then
      return redis.error_reply('ERR entity hash ' .. key .. ' holds "' .. string.sub(v, 1, 64) .. '" for a time, not decimal unix microseconds: not written by Inlet')
    end
  end
  local stale = false
  if curTS then
    local a, b = tonumber(ts), tonumber(curTS)
    stale = a < b or (a == b and rcv ~= '' and curRcv and tonumber(rcv) < tonumber(curRcv))
  end
  if stale then
    out[i] = 1
  else
    if rcv == '' then
      redis.call('HSET', key, 'ts', ts, 'event_id', ARGV[4 * i], 'state', ARGV[4 * i + 1])
      if curRcv then
        redis.call('HDEL', key, 'rcv')
      end
    else
      redis.call('HSET', key, 'ts', ts, 'rcv', rcv, 'event_id', ARGV[4 * i], 'state', ARGV[4 * i + 1])
    end
    out[i] = 0
  end
  if retention > 0 then
    redis.call('PEXPIRE', key, retention)
  else
    redis.call('PERSIST', key)
  end
end
return out
