-- Claim-or-report for one dedup key.
-- KEYS[1] dedup key; ARGV[1] token of this attempt; ARGV[2] lease in ms.
-- Returns 0 acquired, 1 done (already processed), 2 busy (another live lease).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local v = redis.call('GET', KEYS[1])
if v == 'done' then
  return 1
end
if v == ARGV[1] then
  -- Our own claim (a retried batch): re-entrant, refresh the lease.
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
return 2
