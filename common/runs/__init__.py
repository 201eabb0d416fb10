"""Runs: the messages and scripts of the engine, and the operations every service applies to a run
(start, patch, resume, cancel, read, approvals, child runs)."""
