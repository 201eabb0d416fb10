-- Admission: checks every limit of one request or run start and, only if all pass, counts it: one atomic call.
-- KEYS[1..n] = fixed-window counters; KEYS[n+1] = the tenant's active-run zset (when ARGV[3] ~= '').
-- ARGV[1] = window ms, ARGV[2] = run key template (JSON {head, tail}: head .. run id .. tail),
-- ARGV[3] = run id to admit or '', ARGV[4] = active-run cap, ARGV[5] = grace ms for admitted runs not yet
-- started, ARGV[6..] = limit of KEYS[i].
-- Returns {allowed (1|0), index of the limit that refused (0 = active runs, -1 = none), limit, remaining, reset ms}.
local window = tonumber(ARGV[1])
local n = #ARGV - 5
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local active = KEYS[n + 1]
-- A run admitted before (a child start repeated after a crash, or by two advances of one map) is not counted
-- twice: it is in the active set, or its hot state exists because it started (it may have ended already).
local run_key = cjson.decode(ARGV[2])
if ARGV[3] ~= '' and (redis.call('ZSCORE', active, ARGV[3])
    or redis.call('EXISTS', run_key[1] .. ARGV[3] .. run_key[2]) == 1) then
  return { 1, -1, -1, -1, window }
end
local tightest_limit, tightest_remaining, tightest_reset = -1, -1, window
for i = 1, n do
  local limit = tonumber(ARGV[5 + i])
  local used = tonumber(redis.call('GET', KEYS[i]) or '0')
  local reset = redis.call('PTTL', KEYS[i])
  if reset < 0 then reset = window end
  if used >= limit then return { 0, i, limit, 0, reset } end
  local remaining = limit - used - 1
  if tightest_remaining < 0 or remaining < tightest_remaining then
    tightest_limit, tightest_remaining, tightest_reset = limit, remaining, reset
  end
end
if ARGV[3] ~= '' then
  local cap = tonumber(ARGV[4])
  local grace = tonumber(ARGV[5])
  local terminal = { succeeded = true, failed = true, cancelled = true, timed_out = true }
  -- Runs leave the set when they end (end_run); this also drops runs whose hot state is gone (pruned, expired,
  -- lost) and admitted runs whose hot state never appeared (their start failed) once the grace has passed.
  if redis.call('ZCARD', active) >= cap then
    local members = redis.call('ZRANGE', active, 0, -1, 'WITHSCORES')
    for j = 1, #members, 2 do
      local status = redis.call('HGET', run_key[1] .. members[j] .. run_key[2], 'status')
      if (status and terminal[status]) or (not status and now - tonumber(members[j + 1]) > grace) then
        redis.call('ZREM', active, members[j])
      end
    end
  end
  if redis.call('ZCARD', active) >= cap then return { 0, 0, cap, 0, 1000 } end
  redis.call('ZADD', active, now, ARGV[3])
end
for i = 1, n do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], window) end
end
return { 1, -1, tightest_limit, tightest_remaining, tightest_reset }
