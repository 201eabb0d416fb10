-- Swaps a running run's IR for a patched one, checked against the version the patch was computed on and
-- against live node states, and recounts the joins of every node whose incoming edges changed.
-- ARGV[2] = expected ir_version, ARGV[3] = new IR JSON, ARGV[4] = graph JSON, ARGV[5] = patch JSON
--   {author, reason?, added_nodes, added_edges}, ARGV[6] = touched existing nodes {{node, how}} (each must
--   still be pending), ARGV[7] = nodes to rejoin {{node, {{from, on_failure, live_if_succeeded}}}}
--   (live_if_succeeded is absent when the source had no output when the caller read), ARGV[8] = max agents
local status = redis.call('HGET', K_RUN, 'status')
if not status then return { 'missing', '' } end
if TERMINAL[status] then return { 'ended', status } end
local current = tonumber(redis.call('HGET', K_RUN, 'ir_version'))
if current ~= tonumber(ARGV[2]) then return { 'conflict', tostring(current) } end
-- Only a node nothing has happened to yet may change: checked here, atomically with the swap, because a node
-- may have been queued since the caller looked.
local refusals = {}
for _, t in ipairs(cjson.decode(ARGV[6])) do
  local state = node_state(t[1])
  if state.status ~= 'pending' then refusals[#refusals + 1] = { t[1], state.status, t[2] } end
end
if #refusals > 0 then return { 'refused', cjson.encode(refusals) } end
local graph = cjson.decode(ARGV[4])
local topo = graph.n
-- A rejoined node counts its incoming edges afresh from its sources' live states: an edge added from a node
-- that already finished resolves now, and a removed edge no longer counts.
local resolved = {}
for _, r in ipairs(cjson.decode(ARGV[7])) do
  local target = r[1]
  redis.call('HDEL', K_JOIN, target .. ':r', target .. ':l', target .. ':f')
  if #r[2] == 0 then
    resolved[#resolved + 1] = { target, 1 }
    topo[target][1] = 1
  end
  for _, e in ipairs(r[2]) do
    local from, on_failure, live_if_ok = e[1], e[2] == true, e[3]
    local state = node_state(from)
    if state.status == 'succeeded' then
      -- The source finished after the caller read its output: the caller must decide again.
      if live_if_ok == nil or live_if_ok == cjson.null then return { 'conflict', tostring(current) } end
      resolved[#resolved + 1] = { target, (live_if_ok == true) and not on_failure }
    elseif state.status == 'failed' then
      resolved[#resolved + 1] = { target, on_failure }
    elseif state.status == 'skipped' then
      resolved[#resolved + 1] = { target, state.reason == 'unknown node type' and not on_failure }
    elseif state.status == 'cancelled' then
      resolved[#resolved + 1] = { target, false }
    end
  end
end
local version = current + 1
redis.call('SET', K_IR, ARGV[3])
redis.call('HSET', K_RUN, 'ir_version', version)
local patch = cjson.decode(ARGV[5])
patch.from_version = current
patch.to_version = version
emit_event('workflow_patched', nil, patch)
run_ledger()
resolve_edges(resolved, topo, tonumber(ARGV[8]))
maybe_finish(graph)
return { 'ok', tostring(version) }
