"""Secrets (MQTT passwords, TLS keys, signing keys) are read here and nowhere else.

A secret is looked up, in order, in

1. the environment variable ``BINSIGHT_<NAME>`` (upper case),
2. the file named by ``BINSIGHT_<NAME>_FILE``,
3. ``$CREDENTIALS_DIRECTORY/<name>`` (systemd ``LoadCredential=``),
4. an explicit file path from the config (``password_file = ...``).

Keeping the lookups in one module means a reviewer can see every place a secret may come from.
"""

from __future__ import annotations

import os
from pathlib import Path

from binsight.errors import ConfigError

__all__ = ["read_secret"]


def read_secret(name: str, file: str | Path | None = None) -> str | None:
    """Return the secret called ``name`` (``mqtt_password``, ...), or None when none is configured.

    Raises
    ------
    ConfigError
        A file that was named explicitly (by env or config) cannot be read.
    """
    env_name = f"BINSIGHT_{name.upper()}"
    if (value := os.environ.get(env_name)) is not None:
        return value
    candidates: list[tuple[Path, bool]] = []
    if env_file := os.environ.get(f"{env_name}_FILE"):
        candidates.append((Path(env_file), True))
    if cred_dir := os.environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append((Path(cred_dir) / name, False))
    if file is not None:
        candidates.append((Path(file), True))
    for path, required in candidates:
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError:
            if required:
                raise ConfigError(f"secret {name}: file {path} does not exist") from None
        except OSError as exc:
            raise ConfigError(f"secret {name}: cannot read {path}: {exc.strerror}") from exc
    return None
