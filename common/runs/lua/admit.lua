-- Admission: checks every limit of one request or run start and, only if all pass, counts it: one atomic call.
-- Every key is in the admission slot (common/keys.py), so this runs on Redis Cluster.
-- KEYS[1..n] = fixed-window counters; KEYS[n+1] = the tenant's active-run zset (when ARGV[2] ~= '').
-- ARGV[1] = window ms, ARGV[2] = run id to admit or '', ARGV[3] = active-run cap, ARGV[4..] = limit of KEYS[i].
-- Returns {allowed (1|0), index of the limit that refused (0 = active runs, -1 = none), limit, remaining, reset ms}.
-- At the cap the caller drops ended runs from the set (their hashes are in other slots) and asks again.
local window = tonumber(ARGV[1])
local n = #ARGV - 3
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local active = KEYS[n + 1]
-- A run admitted before (a child start repeated after a crash, or by two advances of one map) is not counted twice.
if ARGV[2] ~= '' and redis.call('ZSCORE', active, ARGV[2]) then
  return { 1, -1, -1, -1, window }
end
local tightest_limit, tightest_remaining, tightest_reset = -1, -1, window
for i = 1, n do
  local limit = tonumber(ARGV[3 + i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local reset = redis.call('PTTL', KEYS[i])
  if reset < 0 then reset = window end
  if used >= limit then return { 0, i, limit, 0, reset } end
  local remaining = limit - used - 1
  if tightest_remaining < 0 or remaining < tightest_remaining then
    tightest_limit, tightest_remaining, tightest_reset = limit, remaining, reset
  end
end
if ARGV[2] ~= '' then
  local cap = tonumber(ARGV[3])
  if redis.call('ZCARD', active) >= cap then return { 0, 0, cap, 0, 1000 } end
  redis.call('ZADD', active, now, ARGV[2])
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return { 1, -1, tightest_limit, tightest_remaining, tightest_reset }
