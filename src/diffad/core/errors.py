"""Exceptions with messages that name the offending file, key or value."""

from __future__ import annotations


class DiffadError(Exception):
    """Base class: an error the user can fix; the CLI prints it without a traceback."""


class ConfigError(DiffadError, ValueError):
    """A parameter is unknown, of the wrong type or out of range."""


class DataError(DiffadError):
    """Input data is unreadable, inconsistent or empty. The message names the file."""


class ValidationFailed(DiffadError):
    """The data validation suite failed; the message summarises the failing expectations."""


class ArtifactError(DiffadError):
    """A model or report artifact is missing, corrupt or from an incompatible version."""


def check_range(key: str, value: float, low: float, high: float) -> None:
    """Raise :class:`ConfigError` naming ``key`` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ConfigError(f"{key}: {value!r} is outside [{low}, {high}]")


class NonFiniteError(DiffadError):
    """Training produced NaN or infinity; the message names the stage and step."""


def require_finite(value, what: str, where: str) -> None:
    """Raise :class:`NonFiniteError` (``"<what> is nan <where>"``) unless ``value`` is finite."""
    number = float(value.detach() if hasattr(value, "detach") else value)
    if number != number or number in (float("inf"), float("-inf")):
        raise NonFiniteError(f"{what} is {number} {where}")
