"""Run events: frames, history (Redis, then the Postgres archive), the hub and reader behind live feeds."""
