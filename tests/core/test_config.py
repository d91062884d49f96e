"""Config loading names the bad key; secrets come from env, files or systemd credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

from binsight.config import Section, load_toml
from binsight.errors import ConfigError
from binsight.secrets import read_secret


class _Inner(Section):
    port: int = 1883


class _Conf(Section):
    name: str
    mqtt: _Inner = _Inner()


def test_unknown_key_named(tmp_path: Path) -> None:
    """An unknown nested key is an error naming it."""
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[mqtt]\nprot = 1\n')
    with pytest.raises(ConfigError, match=r"mqtt\.prot: unknown key"):
        load_toml(p, _Conf)


def test_bad_value_named(tmp_path: Path) -> None:
    """A value of the wrong type is an error naming the key."""
    p = tmp_path / "c.toml"
    p.write_text('name = "x"\n[mqtt]\nport = "many"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.port"):
        load_toml(p, _Conf)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    """Missing file and broken TOML both give a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_toml(tmp_path / "nope.toml", _Conf)
    p = tmp_path / "bad.toml"
    p.write_text("name = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(p, _Conf)


def test_secret_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Env beats file-env beats systemd credentials beats the config's file."""
    monkeypatch.delenv("BINSIGHT_MQTT_PASSWORD", raising=False)
    monkeypatch.delenv("BINSIGHT_MQTT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    conf_file = tmp_path / "pw"
    conf_file.write_text("from-config\n")
    assert read_secret("mqtt_password", conf_file) == "from-config"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert read_secret("mqtt_password", conf_file) == "from-systemd"
    env_file = tmp_path / "envpw"
    env_file.write_text("from-env-file")
    monkeypatch.setenv("BINSIGHT_MQTT_PASSWORD_FILE", str(env_file))
    assert read_secret("mqtt_password", conf_file) == "from-env-file"
    monkeypatch.setenv("BINSIGHT_MQTT_PASSWORD", "from-env")
    assert read_secret("mqtt_password", conf_file) == "from-env"
    assert read_secret("absent_secret") is None
    with pytest.raises(ConfigError, match="does not exist"):
        read_secret("absent_secret", tmp_path / "missing")
