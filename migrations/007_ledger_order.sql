-- Ledger entries carry a per-run sequence number (`ledger_seq`, counted in the run's hash by the scripts), and a
-- row only takes an entry newer than the one it holds: entries of one run may reach different recorders and be
-- recorded in any order, and the latest state still wins. Entries written before this (seq 0) keep applying
-- to rows that have not seen a numbered one.
ALTER TABLE runs ADD COLUMN ledger_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE run_steps ADD COLUMN ledger_seq bigint NOT NULL DEFAULT 0;
