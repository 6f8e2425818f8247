"""Exception types. Each carries a one-line message that names the file or value and what was expected;
the CLI prints it as ``error: <message>`` and exits with status 2."""

from __future__ import annotations

__all__ = ["StgcnError", "ConfigError", "CheckpointError", "DataError"]


class StgcnError(Exception):
    """Base class of the errors this library raises for bad input."""


class ConfigError(StgcnError, ValueError):
    """An invalid configuration value, layout, option or name."""


class CheckpointError(StgcnError):
    """A checkpoint file that is missing, truncated, foreign or inconsistent with the model."""


class DataError(StgcnError, ValueError):
    """A data file that is malformed, truncated or inconsistent with the layout or labels."""
