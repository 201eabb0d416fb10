"""Workflows: the definition users write, node types and their configs, the compiler to IR, templates, storage."""
