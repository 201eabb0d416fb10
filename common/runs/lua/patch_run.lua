-- Swaps a running run's IR for a patched one, checked against the version the patch was computed on,
-- and schedules added nodes whose incoming edges are already resolved.
-- ARGV[3] = expected ir_version, ARGV[4] = new IR JSON, ARGV[5] = graph JSON, ARGV[6] = patch JSON
--   {author, reason?, added_nodes, added_edges}, ARGV[7] = edges from existing nodes into added ones:
--   {{from, to, live_if_succeeded (true/false, or absent when the source had no output yet), on_failure}},
-- ARGV[8] = added nodes without incoming edges (JSON list), ARGV[9] = max agents
local status = redis.call('HGET', K_RUN, 'status')
if not status then return { 'missing', '' } end
if TERMINAL[status] then return { 'ended', status } end
local current = tonumber(redis.call('HGET', K_RUN, 'ir_version'))
if current ~= tonumber(ARGV[3]) then return { 'conflict', tostring(current) } end
local graph = cjson.decode(ARGV[5])
local topo = graph.n
local resolved = {}
for _, e in ipairs(cjson.decode(ARGV[7])) do
  local from, to, live_if_ok, on_failure = e[1], e[2], e[3], e[4] == 1 or e[4] == true
  local state = node_state(from)
  if state.status == 'succeeded' then
    -- The source finished after the caller read its output: the caller must decide again.
    if live_if_ok == nil or live_if_ok == cjson.null then return { 'conflict', tostring(current) } end
    resolved[#resolved + 1] = { to, (live_if_ok == true) and not on_failure }
  elseif state.status == 'failed' then
    resolved[#resolved + 1] = { to, on_failure }
  elseif state.status == 'skipped' then
    resolved[#resolved + 1] = { to, state.reason == 'unknown node type' and not on_failure }
  end
end
for _, node_id in ipairs(cjson.decode(ARGV[8])) do
  topo[node_id][1] = 1
  resolved[#resolved + 1] = { node_id, 1 }
end
local version = current + 1
redis.call('SET', K_IR, ARGV[4])
redis.call('HSET', K_RUN, 'ir_version', version)
local patch = cjson.decode(ARGV[6])
patch.from_version = current
patch.to_version = version
emit_event('workflow_patched', nil, patch)
run_ledger()
resolve_edges(resolved, topo, tonumber(ARGV[9]))
maybe_finish(graph)
return { 'ok', tostring(version) }
