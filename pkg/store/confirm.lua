-- Mark each dedup key of KEYS done after the output was written.
-- ARGV[1] token of this attempt; ARGV[1+i] dedup window in ms of KEYS[i].
-- Returns one code per key: 0 confirmed (the claim was ours), 1 already
-- done (left untouched), 2 lost: the lease had expired (marked done anyway),
-- 3 lost: another attempt had claimed it (marked done anyway).
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  if v == 'done' then
    out[i] = 1
  else
    redis.call('SET', key, 'done', 'PX', ARGV[1 + i])
    if v == ARGV[1] then
      out[i] = 0
    elseif not v then
      out[i] = 2
    else
      out[i] = 3
    end
  end
end
return out
