-- Give up one claim after a failed attempt, only if it is still ours.
-- KEYS[1] dedup key; ARGV[1] token of this attempt.
-- Returns 1 released, 0 not ours (expired, taken over or done): untouched.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
