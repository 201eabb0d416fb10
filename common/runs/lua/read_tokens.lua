-- Reads what a worker needs to run a batch of tokens in one call (a pipeline would cost a reply per command).
-- Standalone: KEYS = run, nodes, ctx of each token (three per token), then the IR key of each run to load.
-- ARGV[1] = number of tokens, ARGV[2] = JSON list of {node id, {output node ids to read}} per token,
-- ARGV[3..] = the run fields to read.
-- Returns per token {run field values, node state (nil when none), output refs}, then the text of each IR key.
local n = tonumber(ARGV[1])
local asks = cjson.decode(ARGV[2])
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {}
for i = 1, n do
  local base = (i - 1) * 3
  local ask = asks[i]
  local refs = {}
  if #ask[2] > 0 then refs = redis.call('HMGET', KEYS[base + 3], unpack(ask[2])) end
  out[i] = { redis.call('HMGET', KEYS[base + 1], unpack(fields)), redis.call('HGET', KEYS[base + 2], ask[1]), refs }
end
for j = 3 * n + 1, #KEYS do out[#out + 1] = redis.call('GET', KEYS[j]) end
return out
