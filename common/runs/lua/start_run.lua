-- Creates a run's hot state, writes its IR, queues the entry nodes and appends run_started.
-- ARGV[2] = run fields (JSON object), ARGV[3] = IR JSON, ARGV[4] = graph JSON,
-- ARGV[5] = entry node ids (JSON list), ARGV[6] = max agents, ARGV[7] = run timeout ms (0 = none)
if redis.call('EXISTS', K_RUN) == 1 then
  return { 'exists', redis.call('HGET', K_RUN, 'status') }
end
local fields = cjson.decode(ARGV[2])
for k, v in pairs(fields) do redis.call('HSET', K_RUN, k, v) end
redis.call('HSET', K_RUN, 'status', 'running', 'counter', 0, 'pending_approvals', 0, 'epoch', 0,
  'started_ms', NOW, 'agents_started', 0)
count_active(true)
redis.call('SET', K_IR, ARGV[3])
local timeout_ms = tonumber(ARGV[7])
if timeout_ms > 0 then
  local deadline = math.floor(NOW + timeout_ms)
  redis.call('HSET', K_RUN, 'deadline_ms', deadline)
  redis.call('ZADD', K_DEADLINES, deadline, fields.run_id)
end
emit_event('run_started', nil, { workflow_id = fields.workflow_id, workflow_name = fields.workflow_name,
  version = tonumber(fields.version), ir_version = tonumber(fields.ir_version) })
-- A child run has no definition in Postgres: its start entry carries its IR (JSON text) for rebuilding it.
run_ledger({ inputs = cjson.decode(fields.inputs or '{}'), ir = fields.parent_run_id and ARGV[3] or nil })
local graph = cjson.decode(ARGV[4])
local topo = graph.n
local entries = cjson.decode(ARGV[5])
local edges = {}
-- An entry node has no incoming edge; resolving one synthetic live edge runs it through the same join logic.
for _, node_id in ipairs(entries) do
  local t = topo[node_id]
  t[1] = 1
  edges[#edges + 1] = { node_id, 1 }
end
resolve_edges(edges, topo, tonumber(ARGV[6]))
maybe_finish(graph)
return { 'started', redis.call('HGET', K_RUN, 'status') }
