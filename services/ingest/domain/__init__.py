"""The ingest rules: normalization, field vocabularies, deduplication keys, signature checks.

Plain functions and dataclasses: no I/O, no ORM, no web framework, no broker.
"""
