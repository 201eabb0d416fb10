-- Runs an ended run again from its failed/cancelled nodes (or from one chosen node): those nodes and what
-- follows them are reset, succeeded nodes keep their outputs, and a new epoch makes old tokens void.
-- ARGV[2] = expected epoch, ARGV[3] = nodes to reset (JSON list), ARGV[4] = resolved edges into them
-- ({{to, live}}), ARGV[5] = reset nodes without incoming edges (JSON list), ARGV[6] = graph JSON,
-- ARGV[7] = max agents, ARGV[8] = from node or '', ARGV[9] = the run's new inputs (JSON object) or '' to keep them
local status = redis.call('HGET', K_RUN, 'status')
if not status then return { 'missing', '' } end
if not TERMINAL[status] then return { 'not_ended', status } end
if redis.call('HGET', K_RUN, 'epoch') ~= ARGV[2] then return { 'conflict', status } end
local reset = cjson.decode(ARGV[3])
for _, node_id in ipairs(reset) do
  local state = node_state(node_id)
  purge_due_token(state)
  redis.call('HSET', K_NODES, node_id, cjson.encode({ status = 'pending', attempt = state.attempt or 0 }))
  redis.call('HDEL', K_CTX, node_id)
  redis.call('HDEL', K_JOIN, node_id .. ':r', node_id .. ':l', node_id .. ':f')
end
-- The run lives again: its keys lose the expiry retention gave them when it ended.
for _, key in ipairs({ K_RUN, K_IR, K_APPLIED, K_NODES, K_CTX, K_JOIN }) do redis.call('PERSIST', key) end
redis.call('HINCRBY', K_RUN, 'epoch', 1)
-- Recorded with the run: steps of these nodes from before this resume no longer count when rebuilding it.
redis.call('HSET', K_RUN, 'reset_nodes', ARGV[3])
redis.call('HSET', K_RUN, 'status', 'running', 'counter', 0, 'pending_approvals', 0, 'agents_started', 0)
redis.call('HDEL', K_RUN, 'error', 'ended_ms', 'outputs')
local data = { nodes = reset }
if ARGV[8] ~= '' then data.from_node = ARGV[8] end
local ledger_extra = nil
if ARGV[9] ~= '' then
  -- Workers read the inputs from the run hash per batch; coordinators reload theirs for the new epoch.
  redis.call('HSET', K_RUN, 'inputs', ARGV[9])
  data.inputs_changed = true
  ledger_extra = { inputs = cjson.decode(ARGV[9]) }
end
emit_event('run_resumed', nil, data)
run_ledger(ledger_extra)
local graph = cjson.decode(ARGV[6])
local topo = graph.n
local edges = cjson.decode(ARGV[4])
for _, node_id in ipairs(cjson.decode(ARGV[5])) do
  topo[node_id][1] = 1
  edges[#edges + 1] = { node_id, 1 }
end
-- Only the reset nodes count their incoming edges afresh; others keep their join state.
resolve_edges(edges, topo, tonumber(ARGV[7]))
maybe_finish(graph)
return { 'ok', redis.call('HGET', K_RUN, 'status') }
