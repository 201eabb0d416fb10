-- Starts runs: for each, creates its hot state, writes its IR, queues its entry nodes and appends run_started.
-- Idempotent per run: a run that exists is left as it is. KEYS: the first run's twelve (see the prelude), then the
-- seven own keys of each further run. ARGV[2] = runs (JSON list of {run fields (object), IR index, run timeout ms
-- (0 = none)}), ARGV[3] = max agents, then three per distinct IR: IR JSON, graph JSON, entry node ids (JSON list).
-- Returns per run {'started' | 'exists', run status}.
local runs = cjson.decode(ARGV[2])
local max_agents = tonumber(ARGV[3])
local graphs = {}

local function start_one(fields, ir_index, timeout_ms)
  if redis.call('EXISTS', K_RUN) == 1 then
    return { 'exists', redis.call('HGET', K_RUN, 'status') }
  end
  local base = 3 + (ir_index - 1) * 3
  -- One HSET: the run's fields, then the state every run starts in.
  local hash = {}
  for k, v in pairs(fields) do
    hash[#hash + 1] = k
    hash[#hash + 1] = v
  end
  for _, v in ipairs({ 'status', 'running', 'counter', 0, 'pending_approvals', 0, 'epoch', 0, 'started_ms', NOW,
      'agents_started', 0 }) do
    hash[#hash + 1] = v
  end
  redis.call('HSET', K_RUN, unpack(hash))
  RUN_ID, RUN_EPOCH, RUN_IR_VERSION = fields.run_id, '0', tostring(fields.ir_version)
  RUN_TRACEPARENT = fields.traceparent or false
  redis.call('SET', K_IR, ARGV[base + 1])
  if timeout_ms > 0 then
    local deadline = math.floor(NOW + timeout_ms)
    redis.call('HSET', K_RUN, 'deadline_ms', deadline)
    redis.call('ZADD', K_DEADLINES, deadline, fields.run_id)
  end
  emit_event('run_started', nil, { workflow_id = fields.workflow_id, workflow_name = fields.workflow_name,
    version = tonumber(fields.version), ir_version = tonumber(fields.ir_version) })
  -- A child run has no definition in Postgres: its start entry carries its IR (JSON text) for rebuilding it.
  run_ledger({ inputs = cjson.decode(fields.inputs or '{}'), ir = fields.parent_run_id and ARGV[base + 1] or nil,
    traceparent = fields.traceparent })
  -- Decoded once per IR: marking the entry nodes' in-degree below is the same for every run of it.
  local graph = graphs[ir_index]
  if not graph then
    graph = cjson.decode(ARGV[base + 2])
    graphs[ir_index] = graph
  end
  local topo = graph.n
  local edges = {}
  -- An entry node has no incoming edge; resolving one synthetic live edge runs it through the same join logic.
  for _, node_id in ipairs(cjson.decode(ARGV[base + 3])) do
    topo[node_id][1] = 1
    edges[#edges + 1] = { node_id, 1 }
  end
  resolve_edges(edges, topo, max_agents)
  maybe_finish(graph)
  return { 'started', redis.call('HGET', K_RUN, 'status') }
end

local results = {}
for i, run in ipairs(runs) do
  bind_run_at(i == 1 and 0 or 12 + (i - 2) * 7, 7)
  results[i] = start_one(run[1], run[2], tonumber(run[3]))
end
return results
