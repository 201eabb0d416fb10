-- Stores a finished run's outputs once, records them in the ledger and tells a parent run.
-- ARGV[2] = outputs JSON
if redis.call('HSETNX', K_RUN, 'outputs', ARGV[2]) == 1 then
  run_ledger()
  notify_parent()
  return 1
end
return 0
