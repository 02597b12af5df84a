-- Forgets a job and tells every replica's waiters that it is gone.
-- KEYS[1]: the job's hash. ARGV[1]: the wake-up channel; ARGV[2]: the job key.
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. '\n0\n')
return 1
