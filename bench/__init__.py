"""Benchmarks: measured on the real broker and databases, never asserted in tests."""
