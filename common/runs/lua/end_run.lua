-- Ends a run from outside the completion path (cancel, run timeout) and marks its unfinished nodes.
-- ARGV[2] = terminal status (cancelled | timed_out), ARGV[3] = error JSON or ''
local status = redis.call('HGET', K_RUN, 'status')
if not status then return { 'missing', '' } end
local err = nil
if ARGV[3] ~= '' then err = cjson.decode(ARGV[3]) end
redis.call('ZREM', K_DEADLINES, run_id())
if not end_run(ARGV[2], err) then return { 'ended', status } end
local states = redis.call('HGETALL', K_NODES)
for i = 1, #states, 2 do
  local state = cjson.decode(states[i + 1])
  if state.status == 'queued' or state.status == 'running' or state.status == 'waiting' then
    purge_due_token(state)
    state.status = 'cancelled'
    state.ended_at = NOW
    save_node(states[i], state)
  end
end
return { 'ok', ARGV[2] }
