-- Moves due entries of the delayed set to their task streams. Standalone: not prefixed by _lib.lua.
-- KEYS[1] = delayed zset; ARGV[1] = task stream key template (JSON {head, tail}; a token's stream is
-- head .. type .. tail), ARGV[2] = now ms, ARGV[3] = batch size
local tasks = cjson.decode(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, body in ipairs(due) do
  local token = cjson.decode(body)
  redis.call('XADD', tasks[1] .. token.type .. tasks[2], '*', 't', body)
  redis.call('ZREM', KEYS[1], body)
end
return #due
