-- Compare-and-set of one job's state, and the wake-up for every replica, in one step.
-- KEYS[1]: the job's hash. ARGV[1]: the version the caller read; ARGV[2]: the new state (JSON);
-- ARGV[3]: the wake-up channel; ARGV[4]: the job key.
-- Returns the new version; -1 if the job is not registered; -2 if another writer came first
-- (the caller reads again and re-applies its body to what that writer left).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local version = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')
if version ~= tonumber(ARGV[1]) then
  return -2
end
version = version + 1
redis.call('HSET', KEYS[1], 'ver', version, 'view', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\n' .. version .. '\n' .. ARGV[2])
return version
