"""Shared building blocks of every aob service: settings, keys, models, storage access."""
