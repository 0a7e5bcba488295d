-- Claim-or-report for each dedup key of KEYS.
-- ARGV[1] token of this attempt; ARGV[2] lease in ms.
-- Returns one code per key: 0 acquired, 1 done (already processed: the
-- value is "done" or "done <position>"),
-- 2 busy (another live lease).
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    out[i] = 0
  else
    local v = redis.call('GET', key)
    if string.sub(v, 1, 4) == 'done' then
      out[i] = 1
    elseif v == ARGV[1] then
      -- Our own claim (a retried batch): re-entrant, refresh the lease.
      redis.call('PEXPIRE', key, ARGV[2])
      out[i] = 0
    else
      out[i] = 2
    end
  end
end
return out
