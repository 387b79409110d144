"""Read and validate the settings a dbt Python model passes on from dbt vars.

A model hands its step one dict, ``dbt.config.get("settings")`` (the literal call matters:
dbt finds the config keys a Python model uses by reading its source), declared in the
folder's yml as ``settings: {eps: "{{ var('eps') }}", ...}``; the step reads each var with
e.g. ``read_float("eps", config.get("eps"), minimum=0)``. dbt may render a var to its value
or to its string form, so every reader accepts both, and raises :class:`ConfigError` naming
the var.
"""

from __future__ import annotations

from typing import Any

from .errors import ConfigError

_NONE_STRINGS = {"", "none", "null"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _fix(name: str, expected: str, value: Any) -> ConfigError:
    return ConfigError(
        f"dbt var `{name}` must be {expected}, got {value!r}. "
        f"Set it in dbt_project.yml under vars, or per run: dbt build --vars '{{{name}: ...}}'."
    )


def is_unset(value: Any) -> bool:
    """True for None and for the strings dbt renders an unset (null) var to."""
    return value is None or (isinstance(value, str) and value.strip().lower() in _NONE_STRINGS)


def read_int(name: str, value: Any, *, minimum: int | None = None) -> int:
    """Parse an integer var; ``minimum`` is inclusive."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip()) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        raise _fix(name, "an integer", value) from None
    if minimum is not None and number < minimum:
        raise _fix(name, f"an integer >= {minimum}", value)
    return number


def read_float(
    name: str, value: Any, *, minimum: float | None = None, exclusive: bool = False
) -> float:
    """Parse a float var; ``minimum`` is inclusive unless ``exclusive``."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise _fix(name, "a number", value) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise _fix(name, "a finite number", value)
    if minimum is not None and (number <= minimum if exclusive else number < minimum):
        raise _fix(name, f"a number {'>' if exclusive else '>='} {minimum}", value)
    return number


def read_bool(name: str, value: Any) -> bool:
    """Parse a boolean var (true/false, yes/no, 1/0)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _fix(name, "true or false", value)


def read_str(name: str, value: Any, *, required: bool = True) -> str | None:
    """Parse a string var; an unset value is None unless ``required``."""
    if is_unset(value):
        if required:
            raise _fix(name, "a non-empty string", value)
        return None
    return str(value).strip()


def read_optional_float(
    name: str, value: Any, *, minimum: float | None = None, exclusive: bool = False
) -> float | None:
    """Like :func:`read_float`, but an unset (null) var is None."""
    if is_unset(value):
        return None
    return read_float(name, value, minimum=minimum, exclusive=exclusive)


def read_optional_int(name: str, value: Any, *, minimum: int | None = None) -> int | None:
    """Like :func:`read_int`, but an unset (null) var is None."""
    if is_unset(value):
        return None
    return read_int(name, value, minimum=minimum)
