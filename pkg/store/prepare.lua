-- Mark each dedup claim of KEYS done before its batch's Kafka commit, only
-- if it is still ours (see Store.Prepare).
-- ARGV[1] token of this attempt; for KEYS[i], ARGV[2i] the position of its
-- record, ARGV[2i+1] the dedup window in ms.
-- The key becomes "done <position> <token>": done to every other record,
-- and, to its own record handed out again (the commit did not land),
-- prepared by this token.
-- A key already prepared by this token for the same record is marked
-- again: the call sent again (its answer lost, or its replicas short).
-- Returns one code per key: 1 marked, 0 not ours (expired or taken over):
-- untouched.
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call('GET', key)
  local done = 'done ' .. ARGV[2 * i] .. ' ' .. ARGV[1]
  if v == ARGV[1] or v == done then
    redis.call('SET', key, done, 'PX', ARGV[2 * i + 1])
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
