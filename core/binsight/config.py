"""Typed TOML config: one pydantic model per section, unknown keys rejected.

Every side's config (``device.toml``, ``server.toml``) derives its sections from :class:`Section`
and is loaded with :func:`load_toml`, so a typo in a key is an error naming the key, never a silently
ignored setting.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from binsight.errors import ConfigError

__all__ = ["Section", "check_time_zone", "format_validation_error", "load_toml"]


class Section(BaseModel):
    """Base for config sections: unknown keys are errors, values are validated on assignment too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


M = TypeVar("M", bound=BaseModel)


def check_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone this system knows (a pydantic validator's body)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc
    return name


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem, each naming the dotted key: ``device.toml: camera.interval_s: ...``."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def load_toml(path: str | Path, model: type[M]) -> M:
    """Read ``path`` as TOML and validate it against ``model``.

    Relative paths inside the file are left as written; models that hold paths resolve them
    against the config file's folder themselves (see ``base_dir`` in each side's config).

    Raises
    ------
    ConfigError
        The file is missing, is not valid TOML, or fails validation; the message names the key.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return model.model_validate(data, context={"base_dir": path.parent.resolve()})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
