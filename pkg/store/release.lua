-- Give up each claim of KEYS after a failed attempt, only if it is still ours.
-- ARGV[1] token of this attempt.
-- Returns one code per key: 1 released, 0 not ours (expired, taken over or
-- done): untouched.
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    out[i] = redis.call('DEL', key)
  else
    out[i] = 0
  end
end
return out
