-- Moves one dead letter back to where its message is consumed, only while it is still parked and, for a token,
-- while its run can still use it. Standalone: not prefixed by _lib.lua.
-- KEYS[1] = dead-letter stream, KEYS[2] = target (a task stream, the completion-signals list, or the stream an
-- entry came from), KEYS[3] = the token's run hash, KEYS[4] = the run's applied set (read for tokens only).
-- ARGV[1] = dead-letter entry id, ARGV[2] = kind (token, signal or entry), ARGV[3] = payload (a token's or a
-- signal's JSON, or a JSON object of an entry's fields), ARGV[4] = token id, ARGV[5] = the token's epoch.
-- Returns {'ok', new entry id or ''} or {refusal, detail}.
local TERMINAL = { succeeded = true, failed = true, cancelled = true, timed_out = true }

if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) == 0 then return { 'missing', '' } end
local kind = ARGV[2]
local new_id = ''
if kind == 'token' then
  local run = redis.call('HMGET', KEYS[3], 'status', 'epoch')
  if not run[1] then return { 'no_run', '' } end
  if TERMINAL[run[1]] then return { 'run_ended', run[1] } end
  local epoch = run[2] or '0'
  if epoch ~= ARGV[5] then return { 'stale_epoch', epoch } end
  -- Its completion was applied already (the worker that buried it reported the node failed): nothing to redo.
  if redis.call('SISMEMBER', KEYS[4], ARGV[4]) == 1 then return { 'applied', '' } end
  new_id = redis.call('XADD', KEYS[2], '*', 't', ARGV[3])
elseif kind == 'signal' then
  redis.call('RPUSH', KEYS[2], ARGV[3])
else
  local flat = {}
  for name, value in pairs(cjson.decode(ARGV[3])) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  if #flat == 0 then return { 'empty', '' } end
  new_id = redis.call('XADD', KEYS[2], '*', unpack(flat))
end
redis.call('XDEL', KEYS[1], ARGV[1])
return { 'ok', new_id }
