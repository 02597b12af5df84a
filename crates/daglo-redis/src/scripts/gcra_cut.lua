-- A process saw a 429: halve the shared rate (not below the floor), at most once a second so one
-- burst of refusals counts once, and take away the burst.
-- KEYS[1]: the budget's hash. ARGV[1]: the configured rate; ARGV[2]: the floor.
-- Returns the current rate as text.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local h = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'cut_at')
local tat = tonumber(h[1]) or now
local rate = tonumber(h[2]) or tonumber(ARGV[1])
local cut_at = tonumber(h[3]) or 0
if now - cut_at < 1000000 then
  return tostring(rate)
end
rate = math.max(tonumber(ARGV[2]), rate / 2)
if tat < now then
  tat = now
end
redis.call('HSET', KEYS[1], 'tat', math.floor(tat + 1000000 / rate), 'rate', tostring(rate), 'rate_at', now, 'cut_at', now)
redis.call('PEXPIRE', KEYS[1], 600000)
return tostring(rate)
