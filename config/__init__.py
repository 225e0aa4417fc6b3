"""Kryptelion configuration: validated settings and the root of the exception tree."""
