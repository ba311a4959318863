"""Rulebooks that ship with the service."""

from __future__ import annotations

from pathlib import Path

DEFAULT_RULEBOOK = Path(__file__).with_name("default.yaml")


def default_source() -> str:
    """The default rulebook's YAML, as it is stored when no rulebook exists yet."""
    return DEFAULT_RULEBOOK.read_text(encoding="utf-8")
