-- Compare-and-set of one job's state, and the wake-up for every replica, in one step.
-- KEYS[1]: the job's hash. ARGV[1]: the version the caller started from; ARGV[2]: the new state
-- (JSON); ARGV[3]: the wake-up channel; ARGV[4]: the job key.
-- Returns {new version, 0, ''}; {-1, 0, ''} if the job is not registered; {-2, version, state}
-- if another writer came first: the stored state comes back, so the caller re-applies its body
-- to it without another read.
local stored = redis.call('HMGET', KEYS[1], 'ver', 'view')
if not stored[1] then
  return {-1, 0, ''}
end
local version = tonumber(stored[1]) or 0
if version ~= tonumber(ARGV[1]) then
  return {-2, version, stored[2] or '{}'}
end
version = version + 1
redis.call('HSET', KEYS[1], 'ver', version, 'view', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4] .. '\n' .. version .. '\n' .. ARGV[2])
return {version, 0, ''}
