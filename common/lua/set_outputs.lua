-- Stores a finished run's outputs once, and records them in the ledger.
-- ARGV[3] = outputs JSON
if redis.call('HSETNX', K_RUN, 'outputs', ARGV[3]) == 1 then
  run_ledger()
  return 1
end
return 0
