"""aob coordinator."""
