-- Moves up to ARGV[1] more signals into a coordinator's inflight list (LMPOP is not in Redis 6.2).
-- Standalone: KEYS[1] = completion_signals, KEYS[2] = inflight list
local moved = {}
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not item then break end
  moved[#moved + 1] = item
end
return moved
