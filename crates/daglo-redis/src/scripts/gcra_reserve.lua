-- Reserves the next request slot of one endpoint's budget, shared by every process (GCRA on
-- Redis's clock, so the processes' clocks do not matter).
-- KEYS[1]: the budget's hash. ARGV[1]: the configured rate (requests/s); ARGV[2]: the burst;
-- ARGV[3]: how far ahead a slot may be reserved, in microseconds.
-- Returns {reserved (1/0), delay until the slot in microseconds, the current rate as text}.
-- A 429 seen by any process halves the rate (cut.lua); it recovers by 10% of the configured
-- rate per second, starting a second after the last cut.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local configured = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_ahead = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'tat', 'rate', 'rate_at', 'cut_at')
local tat = tonumber(h[1]) or now
local rate = tonumber(h[2]) or configured
local rate_at = tonumber(h[3]) or now
local cut_at = tonumber(h[4]) or 0
if now - cut_at >= 1000000 and now > rate_at then
  rate = math.min(configured, rate + configured * 0.1 * (now - rate_at) / 1000000)
end
rate_at = now
local interval = 1000000 / rate
if tat < now then
  tat = now
end
local delay = tat - interval * (burst - 1) - now
if delay < 0 then
  delay = 0
end
if delay > max_ahead then
  redis.call('HSET', KEYS[1], 'rate', tostring(rate), 'rate_at', rate_at)
  return {0, math.floor(delay), tostring(rate)}
end
redis.call('HSET', KEYS[1], 'tat', math.floor(tat + interval), 'rate', tostring(rate), 'rate_at', rate_at)
redis.call('PEXPIRE', KEYS[1], 600000)
return {1, math.floor(delay), tostring(rate)}
