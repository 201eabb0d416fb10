-- A worker announces that it started a token: the node shows running (unless the run or node moved on).
-- ARGV[2] = node id, ARGV[3] = attempt, ARGV[4] = worker id
local status = redis.call('HGET', K_RUN, 'status')
if not status or TERMINAL[status] then return 0 end
local state = node_state(ARGV[2])
if state.status ~= 'queued' or state.attempt ~= tonumber(ARGV[3]) then return 0 end
state.status = 'running'
state.started_at = NOW
state.worker_id = ARGV[4]
if state.queued_at then state.queue_ms = math.max(0, NOW - state.queued_at) end
save_node(ARGV[2], state)
emit_event('node_started', ARGV[2], { attempt = state.attempt, worker_id = ARGV[4] })
return 1
