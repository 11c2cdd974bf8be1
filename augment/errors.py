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


# errno values that mean "this location cannot take the write", not "augment has a bug"
_DISK_ERRNOS = {"ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EFBIG"}


def as_output_error(exc: OSError, where: object) -> OSError | OutputError:
    """An OSError from a full, read-only or forbidden location as an OutputError that says so;
    any other OSError unchanged."""
    import errno

    if exc.errno is not None and errno.errorcode.get(exc.errno) in _DISK_ERRNOS:
        return OutputError(f"Cannot write '{exc.filename or where}': {exc.strerror}. Free some space or choose a "
                           "writable location; nothing half-written was left behind.")
    return exc
