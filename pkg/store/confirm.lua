-- Mark each dedup key of KEYS done after the output was written.
-- ARGV[1] token of this attempt; ARGV[1+i] dedup window in ms of KEYS[i].
-- Returns one code per key: 0 confirmed (the claim was ours), 1 already
-- done (marked again: its window starts over), 2 lost: the lease had
-- expired (marked done anyway), 3 lost: another attempt had claimed it
-- (marked done anyway).
-- One SET ... GET per key (Redis >= 6.2) instead of a GET and a SET: every
-- outcome ends with the key done, so only the old value needs reading.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('SET', key, 'done', 'PX', ARGV[1 + i], 'GET')
  if v == ARGV[1] then
    out[i] = 0
  elseif v == 'done' then
    out[i] = 1
  elseif not v then
    out[i] = 2
  else
    out[i] = 3
  end
end
return out
