"""aob fanout."""
