-- Sends one dead letter's message back to where it is consumed, for a token only while its run can still use it.
-- Standalone: not prefixed by _lib.lua. Every key is in the target's slot (a token's task stream is in its run's
-- shard); the dead-letter stream is another slot, so the caller claims the letter there (XDEL) between a 'check'
-- and the 'send' (common/runs/dead_letter_store.py).
-- KEYS[1] = target (a task stream, a shard's completion-signals list, or the stream an entry came from); for a
-- token also KEYS[2] = its run hash, KEYS[3] = the run's applied set.
-- ARGV[1] = 'check' (nothing written) or 'send', ARGV[2] = kind (token, signal or entry), ARGV[3] = payload (a
-- token's or a signal's JSON, or a JSON object of an entry's fields), ARGV[4] = token id, ARGV[5] = the token's epoch.
-- Returns {'ok', new entry id or ''} or {refusal, detail}.
local TERMINAL = { succeeded = true, failed = true, cancelled = true, timed_out = true }

local kind = ARGV[2]
if kind == 'token' then
  local run = redis.call('HMGET', KEYS[2], 'status', 'epoch')
  if not run[1] then return { 'no_run', '' } end
  if TERMINAL[run[1]] then return { 'run_ended', run[1] } end
  local epoch = run[2] or '0'
  if epoch ~= ARGV[5] then return { 'stale_epoch', epoch } end
  -- Its completion was applied already (the worker that buried it reported the node failed): nothing to redo.
  if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 1 then return { 'applied', '' } end
end
local flat = {}
if kind == 'entry' then
  for name, value in pairs(cjson.decode(ARGV[3])) do
    flat[#flat + 1] = name
    flat[#flat + 1] = value
  end
  if #flat == 0 then return { 'empty', '' } end
end
if ARGV[1] == 'check' then return { 'ok', '' } end
if kind == 'token' then return { 'ok', redis.call('XADD', KEYS[1], '*', 't', ARGV[3]) } end
if kind == 'signal' then
  redis.call('RPUSH', KEYS[1], ARGV[3])
  return { 'ok', '' }
end
return { 'ok', redis.call('XADD', KEYS[1], '*', unpack(flat)) }
