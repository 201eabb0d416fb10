-- Recreates the hot state of a run that Postgres holds as live and Redis lost (common/runs/rebuild.py computes
-- every argument from Postgres). Refuses when the run's hash exists, so concurrent rebuilds are harmless.
-- KEYS[13] = the run's child-run set. ARGV[2] = run fields (JSON object of strings), ARGV[3] = IR JSON,
-- ARGV[4] = graph JSON, ARGV[5] = node states to restore as they were ({node -> state}: ended and waiting nodes),
-- ARGV[6] = outputs ({node -> output ref}), ARGV[7] = applied token ids, ARGV[8] = nodes that already fired,
-- ARGV[9] = edges from ended nodes into pending ones ({{to, live}}), ARGV[10] = pending entry nodes,
-- ARGV[11] = nodes to queue again ({{node, attempt, task stream type, due ms (0 = now)}}),
-- ARGV[12] = approval timeouts ({{due ms, wf.delayed member}}), ARGV[13] = child run ids, ARGV[14] = max agents
-- Returns {'rebuilt' | 'exists', run status, queued nodes (JSON list)}.
if redis.call('EXISTS', K_RUN) == 1 then
  return { 'exists', redis.call('HGET', K_RUN, 'status'), '[]' }
end
local K_CHILD_RUNS = KEYS[13]
-- What a partial loss left behind would contradict what is restored (a join counted twice, a stale state).
redis.call('DEL', K_IR, K_APPLIED, K_NODES, K_CTX, K_JOIN, K_CHILD_RUNS)
local fields = cjson.decode(ARGV[2])
for k, v in pairs(fields) do redis.call('HSET', K_RUN, k, v) end
redis.call('HSET', K_RUN, 'status', 'running', 'counter', 0, 'pending_approvals', 0, 'rebuilt_ms', NOW)
redis.call('SET', K_IR, ARGV[3])
if fields.deadline_ms then redis.call('ZADD', K_DEADLINES, fields.deadline_ms, fields.run_id) end

-- A waiting node holds its token (counted in flight) and its approval (counted pending), as request_approval left it.
local waiting = 0
for node_id, state in pairs(cjson.decode(ARGV[5])) do
  redis.call('HSET', K_NODES, node_id, cjson.encode(state))
  if state.status == 'waiting' then waiting = waiting + 1 end
end
if waiting > 0 then
  redis.call('HSET', K_RUN, 'status', 'waiting', 'counter', waiting, 'pending_approvals', waiting)
end
for node_id, ref in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', K_CTX, node_id, ref) end
for _, token_id in ipairs(cjson.decode(ARGV[7])) do redis.call('SADD', K_APPLIED, token_id) end

local graph = cjson.decode(ARGV[4])
local topo = graph.n
-- A node that fired never fires or is skipped again: its joins read as complete, whatever resolves later.
for _, node_id in ipairs(cjson.decode(ARGV[8])) do
  local t = topo[node_id]
  if t then
    redis.call('HSET', K_JOIN, node_id .. ':r', t[1], node_id .. ':l', math.max(1, t[1]), node_id .. ':f', 1)
  end
end

emit_event('run_rebuilt', nil, { epoch = tonumber(fields.epoch) })
run_ledger()
for _, q in ipairs(cjson.decode(ARGV[11])) do
  local due = q[4]
  if due <= NOW then due = nil end
  enqueue(q[1], q[2], q[3], due)
end
-- Pending nodes count their incoming edges afresh from the ended nodes, firing or skipping as the originals would
-- have; a pending entry node gets the synthetic live edge start_run gives it.
local edges = cjson.decode(ARGV[9])
for _, node_id in ipairs(cjson.decode(ARGV[10])) do
  topo[node_id][1] = 1
  edges[#edges + 1] = { node_id, 1 }
end
resolve_edges(edges, topo, tonumber(ARGV[14]))
for _, timeout in ipairs(cjson.decode(ARGV[12])) do redis.call('ZADD', K_DELAYED, timeout[1], timeout[2]) end
for _, child in ipairs(cjson.decode(ARGV[13])) do redis.call('SADD', K_CHILD_RUNS, child) end
maybe_finish(graph)

local queued = {}
local states = redis.call('HGETALL', K_NODES)
for i = 1, #states, 2 do
  if cjson.decode(states[i + 1]).status == 'queued' then queued[#queued + 1] = states[i] end
end
table.sort(queued)
return { 'rebuilt', redis.call('HGET', K_RUN, 'status'), cjson.encode(queued) }
