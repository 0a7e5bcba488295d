-- Give up each claim of KEYS after a failed attempt, only if it is still ours:
-- the claim itself, or the "done <position> <token>" mark Store.Prepare
-- gave it before a commit that did not happen.
-- ARGV[1] token of this attempt.
-- Returns one code per key: 1 released, 0 not ours (expired, taken over or
-- done): untouched.
local out = {}
local mark = ' ' .. ARGV[1]
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == ARGV[1] or (v and string.sub(v, 1, 5) == 'done ' and #v > #mark and string.sub(v, -#mark) == mark) then
    out[i] = redis.call('DEL', key)
  else
    out[i] = 0
  end
end
return out
