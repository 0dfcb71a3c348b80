"""Loading service settings: one TOML file format and one environment convention for every service.

Each service (listener, sink) declares its own dataclass, its `(section, key) -> field` map and its
environment variables; this module does the reading and the scalar conversions they share, so a
deployment file means the same thing to every service that reads it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

Coerce = Callable[[str, Any], Any]


class ConfigError(ValueError):
    """A setting is missing, unknown or of the wrong type."""


def coerce_scalar(kind: str, value: Any) -> tuple[bool, Any]:
    """Convert `value` for a field annotated `kind` when it is a scalar kind; (False, None) otherwise.

    Raises TypeError/ValueError for a bad value (callers turn that into ConfigError with the name)."""
    if kind in ("int", "int | None"):
        return True, None if value in (None, "") else int(value)
    if kind == "float":
        return True, float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return True, value
        return True, str(value).strip().lower() in {"1", "true", "yes", "on"}
    if kind == "str | None":
        return True, value or None
    return False, None


def read_toml(path: Path, keys: Mapping[tuple[str, str], str], coerce: Coerce,
              own_sections: set[str] | None = None) -> dict[str, Any]:
    """Settings from a TOML file of `[section] key = value`.

    An unknown key is an error in this service's `own_sections` (all sections when None) and is
    ignored elsewhere, so one file can carry the settings of several services."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    out: dict[str, Any] = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
        for key, value in values.items():
            name = keys.get((section, key))
            if name is None:
                if own_sections is None or section in own_sections:
                    raise ConfigError(f"{path}: unknown setting [{section}] {key}")
                continue
            out[name] = coerce(name, value)
    return out


def read_env(env: Mapping[str, str], variables: Mapping[str, str], coerce: Coerce,
             skip_empty: bool = False) -> dict[str, Any]:
    """Settings from environment variables (`variables`: name -> field)."""
    return {name: coerce(name, env[var]) for var, name in variables.items()
            if var in env and not (skip_empty and env[var] == "")}
