-- Moves due entries of the delayed set to their task streams. Standalone: not prefixed by _lib.lua.
-- KEYS[1] = delayed zset; ARGV[1] = task stream key template (JSON {head, tail}; a token's stream is
-- head .. type .. tail), ARGV[2] = batch size. Due means due by the Redis server's clock, the one due times use.
local tasks = cjson.decode(ARGV[1])
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + tonumber(now[2]) / 1000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[2]))
for _, body in ipairs(due) do
  local token = cjson.decode(body)
  redis.call('XADD', tasks[1] .. token.type .. tasks[2], '*', 't', body)
  redis.call('ZREM', KEYS[1], body)
end
return #due
