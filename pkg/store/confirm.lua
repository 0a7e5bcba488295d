-- Mark one dedup key done after the output was written.
-- KEYS[1] dedup key; ARGV[1] token of this attempt; ARGV[2] dedup window in ms.
-- Returns 0 confirmed (the claim was ours), 1 already done (left untouched),
-- 2 lost: the lease had expired (marked done anyway),
-- 3 lost: another attempt had claimed it (marked done anyway).
local v = redis.call('GET', KEYS[1])
if v == 'done' then
  return 1
end
redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
if v == ARGV[1] then
  return 0
end
if not v then
  return 2
end
return 3
