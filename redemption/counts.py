"""Temporary alias of redemption.db.counts for callers not yet moved (tasks.py)."""

from redemption.db.counts import by_type, compact, uses_triggers

__all__ = ["by_type", "compact", "uses_triggers"]
