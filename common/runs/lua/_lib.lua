-- Shared prelude of the run-state scripts: prepended to each script when it is loaded.
-- Callers pass KEYS[1..12] = run, ir, applied, nodes, ctx, join, events, then the shard's ledger, deadlines, delayed,
-- children, ended (a script that handles several runs of one shard passes the seven own keys of each further run
-- and binds each run in turn with bind_run_at, the five shared keys staying those of the first),
-- ARGV[1] = key templates (JSON) {tasks = {head, tail}, tenant_events = {head, tail}} of the run's shard, for the
-- keys named by data the scripts read (a token's type, the run's tenant). The remaining ARGV are the script's own.
-- Every key a script touches is in the run's shard, so it runs on Redis Cluster (one slot per call).
-- No key name is spelled here: common/keys.py builds them all.
-- A "graph" argument is IR.topology(): {n = {node -> {indegree, join_any, routing, {{to, on_failure}...}}},
-- o = 1 when the workflow has `outputs` templates}.
local K_RUN, K_IR, K_APPLIED, K_NODES, K_CTX, K_JOIN, K_EVENTS, K_LEDGER, K_DEADLINES, K_DELAYED, K_CHILDREN, K_ENDED
local RUN_ID
local KEY_TEMPLATES = cjson.decode(ARGV[1])
-- One clock for every process: due times, deadlines and timestamps all come from the Redis server's.
local NOW_PARTS = redis.call('TIME')
local NOW = tonumber(NOW_PARTS[1]) * 1000 + tonumber(NOW_PARTS[2]) / 1000
local EVENTS_MAXLEN = 100000
local TENANT_EVENTS_MAXLEN = 10000
-- The schema version `v` of each message these scripts write: the `v` of its model in common/runs
-- (Token, Event, ChildRunEnded in messages.py; RunEntry, StepEntry in ledger.py). A test holds them equal.
local TOKEN_V = 1
local EVENT_V = 1
local LEDGER_V = 1
local CHILD_END_V = 1

local TERMINAL = { succeeded = true, failed = true, cancelled = true, timed_out = true }

-- The run's epoch and IR version as read by a script that does not change them (apply_completion sets them
-- after its own read), so writing a step or a token does not read them again; nil means "read the run".
-- RUN_TRACEPARENT likewise, false when the run has none (started with tracing off).
local RUN_EPOCH, RUN_IR_VERSION, RUN_TRACEPARENT

-- Binds the run whose seven own keys start after KEYS[base] and the five shared keys after KEYS[shared].
local function bind_run_at(base, shared)
  K_RUN, K_IR, K_APPLIED, K_NODES, K_CTX, K_JOIN, K_EVENTS = KEYS[base + 1], KEYS[base + 2], KEYS[base + 3],
    KEYS[base + 4], KEYS[base + 5], KEYS[base + 6], KEYS[base + 7]
  K_LEDGER, K_DEADLINES, K_DELAYED, K_CHILDREN, K_ENDED = KEYS[shared + 1], KEYS[shared + 2], KEYS[shared + 3],
    KEYS[shared + 4], KEYS[shared + 5]
  RUN_ID, RUN_EPOCH, RUN_IR_VERSION, RUN_TRACEPARENT = nil, nil, nil, nil
end

local function bind_run(base)
  bind_run_at(base, base + 7)
end
bind_run(0)

local function key_for(template, value)
  return template[1] .. value .. template[2]
end

local function run_id()
  if not RUN_ID then RUN_ID = redis.call('HGET', K_RUN, 'run_id') end
  return RUN_ID
end

local function emit_event(etype, node_id, data)
  local event = { v = EVENT_V, type = etype, run_id = run_id(), ts = math.floor(NOW), data = data or {} }
  if node_id then event.node_id = node_id end
  -- cjson encodes an empty table as {}, which is what an empty `data` should be.
  local body = cjson.encode(event)
  redis.call('XADD', K_EVENTS, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'e', body)
  -- Approval requests also reach the tenant stream: notifications follow it (common/notifications).
  if not node_id or etype == 'workflow_patched' or etype == 'approval_requested' then
    local tenant = redis.call('HGET', K_RUN, 'tenant')
    redis.call('XADD', key_for(KEY_TEMPLATES.tenant_events, tenant), 'MAXLEN', '~', TENANT_EVENTS_MAXLEN, '*', 'e',
      body)
  end
end

local function ledger(entry)
  entry.v = LEDGER_V
  -- Orders the run's entries for the recorder, whichever recorder gets which entry.
  entry.seq = redis.call('HINCRBY', K_RUN, 'ledger_seq', 1)
  redis.call('XADD', K_LEDGER, '*', 'l', cjson.encode(entry))
end

local function node_state(node_id)
  local raw = redis.call('HGET', K_NODES, node_id)
  if raw then return cjson.decode(raw) end
  return { status = 'pending', attempt = 0 }
end

local function save_node(node_id, state)
  redis.call('HSET', K_NODES, node_id, cjson.encode(state))
  ledger({ kind = 'step', run_id = run_id(), node_id = node_id, attempt = state.attempt, status = state.status,
    queued_at = state.queued_at, started_at = state.started_at, ended_at = state.ended_at,
    queue_ms = state.queue_ms, exec_ms = state.exec_ms, worker_id = state.worker_id,
    output_ref = state.output_ref, error = state.error,
    epoch = tonumber(RUN_EPOCH or redis.call('HGET', K_RUN, 'epoch') or '0'), branch = state.branch })
end

local function run_ledger(extra)
  local fields = redis.call('HMGET', K_RUN, 'status', 'ir_version', 'started_ms', 'ended_ms', 'error', 'outputs',
    'tenant', 'workflow_id', 'workflow_name', 'version', 'started_by', 'parent_run_id', 'parent_node_id')
  -- Every run entry carries what inserting the row needs, so the recorder may see entries in any order.
  local entry = { kind = 'run', run_id = run_id(), status = fields[1], ir_version = tonumber(fields[2]),
    started_at = tonumber(fields[3]), ended_at = tonumber(fields[4]), tenant = fields[7],
    workflow_id = fields[8], workflow_name = fields[9], version = tonumber(fields[10]),
    started_by = fields[11] or nil, parent_run_id = fields[12] or nil, parent_node_id = fields[13] or nil }
  if fields[5] then entry.error = cjson.decode(fields[5]) end
  if fields[6] then entry.outputs = cjson.decode(fields[6]) end
  -- What rebuilding the run from Postgres needs besides the row (common/runs/rebuild.py).
  local rebuild = redis.call('HMGET', K_RUN, 'epoch', 'deadline_ms', 'reset_nodes')
  entry.epoch = tonumber(rebuild[1] or '0')
  entry.deadline_at = tonumber(rebuild[2])
  if rebuild[3] then entry.reset_nodes = cjson.decode(rebuild[3]) end
  if extra then for k, v in pairs(extra) do entry[k] = v end end
  ledger(entry)
end

-- A child run (one with a parent) reports its end to the children stream once its outcome is complete: at once
-- when it did not succeed or its outputs are known, otherwise when set_outputs stores them.
local function notify_parent()
  local f = redis.call('HMGET', K_RUN, 'parent_run_id', 'parent_node_id', 'status', 'outputs', 'error')
  if not f[1] then return end
  local record = { v = CHILD_END_V, run_id = run_id(), parent_run_id = f[1], parent_node_id = f[2] or nil,
    status = f[3] }
  if f[4] then record.outputs = cjson.decode(f[4]) end
  if f[5] then record.error = cjson.decode(f[5]) end
  redis.call('XADD', K_CHILDREN, '*', 'c', cjson.encode(record))
end

-- Takes the node's token out of the delayed set if it is still waiting there (a no-op once it moved on).
local function purge_due_token(state)
  if state.due_token then
    redis.call('ZREM', K_DELAYED, state.due_token)
    state.due_token = nil
  end
end

-- Marks every node still in flight (queued, running, waiting) cancelled: a run that ended has none.
local function cancel_unfinished_nodes()
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
end

-- Ends the run with a terminal status; returns false when it had already ended.
local function end_run(status, err)
  local current = redis.call('HGET', K_RUN, 'status')
  if TERMINAL[current] then return false end
  redis.call('HSET', K_RUN, 'status', status, 'ended_ms', NOW)
  if err then redis.call('HSET', K_RUN, 'error', cjson.encode(err)) end
  redis.call('ZREM', K_DEADLINES, run_id())
  -- The run leaves its tenant's active runs (common/runs/admission.py, another slot) through the shard's outbox.
  redis.call('RPUSH', K_ENDED, run_id() .. ' ' .. redis.call('HGET', K_RUN, 'tenant'))
  local data = {}
  if err then data.error = err end
  emit_event('run_' .. status, nil, data)
  run_ledger()
  -- A failed, cancelled or timed-out run stops its other nodes too (a succeeded one has none in flight).
  if status ~= 'succeeded' then cancel_unfinished_nodes() end
  if status ~= 'succeeded' or redis.call('HEXISTS', K_RUN, 'outputs') == 1 then notify_parent() end
  return true
end

local function token_for(node_id, attempt, routing)
  local epoch = RUN_EPOCH or redis.call('HGET', K_RUN, 'epoch') or '0'
  -- The run's trace context travels in every token (docs/observability.md).
  if RUN_TRACEPARENT == nil then RUN_TRACEPARENT = redis.call('HGET', K_RUN, 'traceparent') end
  return { v = TOKEN_V, token_id = epoch .. ':' .. node_id .. ':' .. attempt, run_id = run_id(), node_id = node_id,
    type = routing, attempt = attempt,
    ir_version = tonumber(RUN_IR_VERSION or redis.call('HGET', K_RUN, 'ir_version')),
    traceparent = RUN_TRACEPARENT or nil }
end

-- Queues one node execution: to its task stream, or to the delayed set for delay nodes and retries.
local function enqueue(node_id, attempt, routing, due_ms, known_state)
  local state = known_state or node_state(node_id)
  local stream_type = routing
  local delay_s = nil
  if string.sub(routing, 1, 6) == 'delay:' then
    stream_type = 'builtin'
    delay_s = tonumber(string.sub(routing, 7))
  end
  local token = token_for(node_id, attempt, stream_type)
  local body = cjson.encode(token)
  -- A delay node waits its delay on every attempt it is queued for (a resume queues it again).
  if delay_s and not due_ms then due_ms = NOW + math.floor(delay_s * 1000) end
  -- The node remembers its waiting token, so ending or resuming the run can take it back out of the delayed set.
  state.due_token = nil
  if due_ms then
    redis.call('ZADD', K_DELAYED, due_ms, body)
    state.due_token = body
  else
    redis.call('XADD', key_for(KEY_TEMPLATES.tasks, stream_type), '*', 't', body)
  end
  redis.call('HINCRBY', K_RUN, 'counter', 1)
  state.status = 'queued'
  state.attempt = attempt
  state.queued_at = due_ms or NOW
  state.started_at = nil
  state.ended_at = nil
  state.queue_ms = nil
  state.exec_ms = nil
  state.error = nil
  save_node(node_id, state)
  emit_event('node_queued', node_id, { attempt = attempt })
end

local function fail_run_for(node_id, err)
  end_run('failed', { node_id = node_id, type = err.type, message = err.message })
end

-- Resolves edges into their targets and schedules or skips nodes whose joins are complete.
-- `edges` is a list of {to, live}; `topo` maps node -> {indegree, join_any, routing, {{to, on_failure}, ...}}.
local function resolve_edges(edges, topo, max_agents)
  local queue = {}
  for _, e in ipairs(edges) do queue[#queue + 1] = e end
  local head = 1
  while head <= #queue do
    local edge = queue[head]
    head = head + 1
    local target, live = edge[1], edge[2] == 1 or edge[2] == true
    local t = topo[target]
    if t then
      local resolved = redis.call('HINCRBY', K_JOIN, target .. ':r', 1)
      local live_count
      if live then
        live_count = redis.call('HINCRBY', K_JOIN, target .. ':l', 1)
      else
        live_count = tonumber(redis.call('HGET', K_JOIN, target .. ':l') or '0')
      end
      local indegree, join_any, routing, succ = t[1], t[2] == 1, t[3], t[4]
      local fire = false
      local skip = false
      if join_any then
        if live and redis.call('HSETNX', K_JOIN, target .. ':f', 1) == 1 then fire = true end
        if resolved == indegree and live_count == 0 then skip = true end
      elseif resolved == indegree then
        if live_count > 0 then fire = true else skip = true end
      end
      if fire then
        if routing == 'unknown' then
          local state = node_state(target)
          state.status = 'skipped'
          state.ended_at = NOW
          state.reason = 'unknown node type'
          save_node(target, state)
          emit_event('node_skipped', target, { reason = 'unknown node type', warning = true })
          for _, s in ipairs(succ) do queue[#queue + 1] = { s[1], s[2] == 0 } end
        elseif routing == 'agent' and max_agents >= 0
            and redis.call('HINCRBY', K_RUN, 'agents_started', 1) > max_agents then
          local err = { type = 'spawn_limit', message = 'agent limit exceeded: more than ' .. max_agents ..
            ' agent nodes in one run', retryable = false }
          local state = node_state(target)
          state.status = 'failed'
          state.attempt = 1
          state.ended_at = NOW
          state.error = err
          save_node(target, state)
          emit_event('node_failed', target, { attempt = 1, error = err })
          local handled = false
          for _, s in ipairs(succ) do
            if s[2] == 1 then handled = true end
            queue[#queue + 1] = { s[1], s[2] == 1 }
          end
          if not handled then fail_run_for(target, err) end
        else
          -- A resumed node keeps counting attempts, so every attempt has its own step record.
          local state = node_state(target)
          enqueue(target, (state.attempt or 0) + 1, routing, nil, state)
        end
      elseif skip then
        local state = node_state(target)
        state.status = 'skipped'
        state.ended_at = NOW
        state.reason = 'dead path'
        save_node(target, state)
        emit_event('node_skipped', target, { reason = 'dead path' })
        for _, s in ipairs(succ) do queue[#queue + 1] = { s[1], false } end
      end
    end
  end
end

-- The default outputs (succeeded terminal nodes' outputs by node id) as JSON text, built from the stored
-- output texts; nil when the workflow has output templates or an output lives in CAS (the caller then
-- computes them).
local function default_outputs(graph)
  if graph.o == 1 then return nil end
  local ids = {}
  for node_id, t in pairs(graph.n) do
    if #t[4] == 0 then ids[#ids + 1] = node_id end
  end
  table.sort(ids)
  local parts = {}
  for _, node_id in ipairs(ids) do
    if node_state(node_id).status == 'succeeded' then
      local raw = redis.call('HGET', K_CTX, node_id)
      if raw and string.sub(raw, 1, 6) == 'cas://' then return nil end
      parts[#parts + 1] = cjson.encode(node_id) .. ':' .. (raw or 'null')
    end
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

local FINAL_NODE = { succeeded = true, failed = true, skipped = true, cancelled = true }

-- Nodes of the graph that never reached a final state, sorted; none when the run may succeed.
local function unfinished_nodes(graph)
  local states = redis.call('HGETALL', K_NODES)
  local final = {}
  for i = 1, #states, 2 do
    if FINAL_NODE[cjson.decode(states[i + 1]).status] then final[states[i]] = true end
  end
  local ids = {}
  for node_id in pairs(graph.n) do
    if not final[node_id] then ids[#ids + 1] = node_id end
  end
  table.sort(ids)
  return ids
end

-- Finishes the run once nothing is in flight and no approval is pending: successfully when every node reached
-- a final state, otherwise as failed with `engine_invariant` (never silently succeeded without a node).
-- Returns false (not finished), true, or 'invariant' when it had to fail the run for that reason.
local function maybe_finish(graph)
  local fields = redis.call('HMGET', K_RUN, 'status', 'counter', 'pending_approvals')
  if TERMINAL[fields[1]] then return false end
  if tonumber(fields[2]) <= 0 and tonumber(fields[3] or '0') <= 0 then
    local unfinished = unfinished_nodes(graph)
    if #unfinished > 0 then
      end_run('failed', { type = 'engine_invariant', node_id = unfinished[1],
        message = 'nothing is in flight but these nodes never ended: ' .. table.concat(unfinished, ', ') })
      return 'invariant'
    end
    local outputs = default_outputs(graph)
    if outputs then redis.call('HSET', K_RUN, 'outputs', outputs) end
    return end_run('succeeded', nil)
  end
  return false
end
