-- Ends a run from outside the completion path (cancel, run timeout); its unfinished nodes end cancelled.
-- ARGV[2] = terminal status (cancelled | timed_out), ARGV[3] = error JSON or ''
local status = redis.call('HGET', K_RUN, 'status')
if not status then return { 'missing', '' } end
local err = nil
if ARGV[3] ~= '' then err = cjson.decode(ARGV[3]) end
redis.call('ZREM', K_DEADLINES, run_id())
if not end_run(ARGV[2], err) then return { 'ended', status } end
return { 'ok', ARGV[2] }
