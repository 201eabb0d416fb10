-- Applies a batch of decided completions, each atomically: idempotent by token id, checked against the
-- IR version its decision was computed on. KEYS: the first run's twelve (see the prelude), then the seven own
-- keys of each further run. ARGV[2] = max agents, ARGV[3] = decisions (JSON list), ARGV[4] = graphs (JSON list),
-- ARGV[5] = the index into the graphs of each decision's graph (JSON list), ARGV[6] = the index of each decision's
-- run (JSON list, 0 for the first run)
-- decision: common.runs.decisions.Decision {v, token_id, node_id, attempt, ir_version, outcome =
--   succeeded|failed|retrying, output_ref?, branch?, error?, worker_id?, started_at?, ended_at?,
--   edges? = {{to, live}}, fail_run, retry_delay_ms?, approval}
-- Returns per decision {result, run status, has outputs}; result is applied | finished | duplicate |
-- stale | ignored | missing | invariant (the run had to fail: nodes never ended).
local max_agents = tonumber(ARGV[2])
local graphs = cjson.decode(ARGV[4])
local graph_of = cjson.decode(ARGV[5])

local function apply_one(d, graph)
  if redis.call('SISMEMBER', K_APPLIED, d.token_id) == 1 then
    local f = redis.call('HMGET', K_RUN, 'status', 'outputs')
    return { 'duplicate', f[1] or '', f[2] and 1 or 0 }
  end
  local run = redis.call('HMGET', K_RUN, 'status', 'ir_version', 'epoch', 'traceparent')
  local status = run[1]
  if not status then return { 'missing', '', 0 } end
  if tonumber(run[2]) ~= d.ir_version then return { 'stale', status, 0 } end
  -- A token from before a resume belongs to an earlier life of the run and no longer counts.
  if string.match(d.token_id, '^(%d+):') ~= run[3] then return { 'ignored', status, 0 } end
  -- Neither changes while this script runs: steps and tokens written below reuse them.
  RUN_EPOCH, RUN_IR_VERSION, RUN_TRACEPARENT = run[3], run[2], run[4]
  redis.call('SADD', K_APPLIED, d.token_id)
  redis.call('HINCRBY', K_RUN, 'counter', -1)
  if d.approval then
    local pending = redis.call('HINCRBY', K_RUN, 'pending_approvals', -1)
    if pending <= 0 and status == 'waiting' then
      redis.call('HSET', K_RUN, 'status', 'running')
      status = 'running'
    end
  end
  if TERMINAL[status] then return { 'ignored', status, 0 } end

  local topo = graph.n
  local state = node_state(d.node_id)
  if state.status ~= 'running' and d.outcome ~= 'retrying' then
    emit_event('node_started', d.node_id, { attempt = d.attempt, worker_id = d.worker_id })
  end
  state.attempt = d.attempt
  state.due_token = nil
  state.started_at = d.started_at or state.started_at or NOW
  state.ended_at = d.ended_at or NOW
  state.worker_id = d.worker_id
  if state.queued_at then state.queue_ms = math.max(0, state.started_at - state.queued_at) end
  state.exec_ms = math.max(0, state.ended_at - state.started_at)
  state.error = d.error

  if d.outcome == 'retrying' then
    state.status = 'failed'
    save_node(d.node_id, state)
    emit_event('node_retrying', d.node_id, { attempt = d.attempt, error = d.error,
      delay_ms = d.retry_delay_ms })
    enqueue(d.node_id, d.attempt + 1, topo[d.node_id][3], NOW + d.retry_delay_ms)
  elseif d.outcome == 'failed' then
    state.status = 'failed'
    save_node(d.node_id, state)
    emit_event('node_failed', d.node_id, { attempt = d.attempt, error = d.error })
    if d.fail_run then
      fail_run_for(d.node_id, d.error)
    else
      resolve_edges(d.edges, topo, max_agents)
    end
  else
    state.status = d.outcome
    state.output_ref = d.output_ref
    state.branch = d.branch
    if d.output_ref then redis.call('HSET', K_CTX, d.node_id, d.output_ref) end
    save_node(d.node_id, state)
    local data = { attempt = d.attempt, queue_ms = state.queue_ms, exec_ms = state.exec_ms, branch = d.branch }
    if d.output_ref and string.len(d.output_ref) <= 2048 then data.output = d.output_ref end
    emit_event('node_' .. d.outcome, d.node_id, data)
    resolve_edges(d.edges, topo, max_agents)
  end
  local finished = maybe_finish(graph)
  if finished then
    local f = redis.call('HMGET', K_RUN, 'status', 'outputs')
    return { finished == 'invariant' and 'invariant' or 'finished', f[1], f[2] and 1 or 0 }
  end
  return { 'applied', redis.call('HGET', K_RUN, 'status'), 0 }
end

local decisions = cjson.decode(ARGV[3])
local run_of = cjson.decode(ARGV[6])
local results = {}
for i, d in ipairs(decisions) do
  local r = run_of[i]
  bind_run_at(r == 0 and 0 or 12 + (r - 1) * 7, 7)
  results[i] = apply_one(d, graphs[graph_of[i]])
end
return results
