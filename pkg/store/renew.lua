-- Extend each entity lock of KEYS that is still ours; never take one.
-- ARGV[1] token of this attempt; ARGV[2] lease in ms.
-- Returns one code per key: 1 extended, 0 not ours (expired, released or
-- taken by another attempt): untouched.
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
