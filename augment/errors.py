"""Errors a user can fix: each names the file, key or value and says what to do.

The CLI turns any `AugmentError` into a message on stderr and exit status 2;
anything else is a bug and exits with status 1.
"""


class AugmentError(Exception):
    """Base class for problems with the user's input or configuration."""


class ConfigError(AugmentError, ValueError):
    """A config key, value or combination that cannot be used."""


class DatasetError(AugmentError, ValueError):
    """A dataset that cannot be read or used; the message names the file and the problem."""


class OutputError(AugmentError):
    """An output location that cannot be written as asked (exists, not writable, ...)."""
