-- A hitl token opened an approval: the node waits, the run waits, the timeout (if any) is scheduled.
-- ARGV[2] = node id, ARGV[3] = attempt, ARGV[4] = token id,
-- ARGV[5] = approval JSON {approval_id, title, description, expires_at},
-- ARGV[6] = timeout token JSON or '', ARGV[7] = timeout due ms
-- Returns 'requested', or why nothing changed: 'exists' (a redelivered token), 'moved' (the node went on
-- without it), 'ended' (the run is over), 'missing' (no such run).
local status = redis.call('HGET', K_RUN, 'status')
if not status then return 'missing' end
if TERMINAL[status] then return 'ended' end
local node_id = ARGV[2]
local approval = cjson.decode(ARGV[5])
local state = node_state(node_id)
if state.status == 'waiting' and state.approval_id == approval.approval_id then return 'exists' end
if redis.call('SISMEMBER', K_APPLIED, ARGV[4]) == 1 or state.status ~= 'queued'
    or state.attempt ~= tonumber(ARGV[3]) then
  return 'moved'
end
redis.call('HINCRBY', K_RUN, 'pending_approvals', 1)
if status == 'running' then
  redis.call('HSET', K_RUN, 'status', 'waiting')
  run_ledger()
end
state.status = 'waiting'
state.started_at = NOW
state.approval_id = approval.approval_id
if state.queued_at then state.queue_ms = math.max(0, NOW - state.queued_at) end
save_node(node_id, state)
emit_event('approval_requested', node_id, approval)
if ARGV[6] ~= '' then
  redis.call('ZADD', K_DELAYED, tonumber(ARGV[7]), ARGV[6])
end
return 'requested'
