"""`tcfuzz` subcommands of the triage package (registered through fuzzer.cli.COMMAND_MODULES)."""

from __future__ import annotations


def register(commands) -> dict:
    """Add this package's subcommands to ``commands``; their handlers by name."""
    return {}
