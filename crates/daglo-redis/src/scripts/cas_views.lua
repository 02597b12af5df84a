-- Compare-and-set of the states of one or more jobs (a group commit: the writes that queued up
-- while the previous batch was in flight), and one wake-up for every replica, in one step.
-- KEYS[i]: job i's hash. ARGV[1]: the wake-up channel; ARGV[2]: the longest state the wake-up
-- carries; for job i, ARGV[3i]: the version its writer started from, ARGV[3i+1]: the new state
-- (JSON, never a raw newline), ARGV[3i+2]: the job key.
-- Returns one reply per job, in order: {new version, 0, ''}; {-1, 0, ''} if the job is not
-- registered; {-2, version, state} if another writer came first: the stored state comes back,
-- so the writer re-applies its body to it without another read. Two writes to one job in one
-- batch are taken in order: the second meets the first's version and gets its state back.
-- The wake-up carries every change as `key\nversion\nstate`, joined by newlines; a state longer
-- than ARGV[2] (a final with its transcript) as `-`: the replica waiting for it reads it.
local replies = {}
local changes = {}
local longest = tonumber(ARGV[2])
for i, hash in ipairs(KEYS) do
  local version = redis.call('HGET', hash, 'ver')
  if not version then
    replies[i] = {-1, 0, ''}
  else
    version = tonumber(version) or 0
    if version ~= tonumber(ARGV[3 * i]) then
      replies[i] = {-2, version, redis.call('HGET', hash, 'view') or '{}'}
    else
      version = version + 1
      local state = ARGV[3 * i + 1]
      redis.call('HSET', hash, 'ver', version, 'view', state)
      if #state > longest then
        state = '-'
      end
      changes[#changes + 1] = ARGV[3 * i + 2] .. '\n' .. version .. '\n' .. state
      replies[i] = {version, 0, ''}
    end
  end
end
if #changes > 0 then
  redis.call('PUBLISH', ARGV[1], table.concat(changes, '\n'))
end
return replies
