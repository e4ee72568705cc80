"""Domain errors. The CLI turns each into one line on stderr and exit code 1 (never a traceback)."""

from __future__ import annotations


class HeattrackError(Exception):
    """A problem with the user's input or environment that the user can fix; the message says what and where."""


class InputError(HeattrackError):
    """Input data are missing, unreadable or inconsistent."""


class ConfigError(HeattrackError):
    """The configuration is invalid or conflicts with an existing output."""


class NoDataError(HeattrackError):
    """Nothing usable over the area of interest (all cloud, all nodata, or no overlap)."""
