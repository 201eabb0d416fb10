"""aob workers."""
