"""device.toml: validated, unknown keys named, paths resolved; ``--check`` prints or exits 1."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from binsight.cli import main
from binsight.config import load_toml
from binsight.device.config import DeviceConfig
from binsight.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "deploy" / "device.toml"


def test_sample_config_loads_with_design_keys(tmp_path: Path) -> None:
    """deploy/device.toml is valid; the documented keys are there; writable files in the state dir."""
    shutil.copy(SAMPLE, tmp_path / "device.toml")
    cfg = load_toml(tmp_path / "device.toml", DeviceConfig)
    assert cfg.bin_id == "bin-0001"
    # /etc/binsight is read-only under the agent's systemd unit: model and outbox go to its StateDirectory.
    state = Path("/var/lib/binsight-agent")
    assert cfg.model == state / "model.onnx"
    assert cfg.camera.source == "0" and cfg.camera.interval_s == 600
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("127.0.0.1", 1883)
    assert cfg.outbox.path == state / "outbox.db"


def test_relative_paths_resolve_to_config_folder(tmp_path: Path) -> None:
    """Relative model and outbox paths resolve against the config file's folder."""
    p = tmp_path / "d.toml"
    p.write_text('bin_id = "b1"\nmodel = "m.onnx"\n[outbox]\npath = "o.db"\n')
    cfg = load_toml(p, DeviceConfig)
    assert cfg.model == tmp_path / "m.onnx"
    assert cfg.outbox.path == tmp_path / "o.db"


def test_minimal_config_and_source_kinds(tmp_path: Path) -> None:
    """Only bin_id is required; indexes and URLs stay as written, folders become absolute."""
    p = tmp_path / "d.toml"
    for source, expected in [
        ("2", "2"),
        ("rtsp://cam/stream", "rtsp://cam/stream"),
        ("imgs", str(tmp_path / "imgs")),
    ]:
        p.write_text(f'bin_id = "b-1"\n[camera]\nsource = "{source}"\n')
        assert load_toml(p, DeviceConfig).camera.source == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('bin_id = "b"\n[camera]\nintervall_s = 5\n', r"camera\.intervall_s: unknown key"),
        ('bin_id = "b"\nextra = 1\n', r"extra: unknown key"),
        ('bin_id = "b/1"\n', r"bin_id"),
        ('bin_id = "b"\n[camera]\ninterval_s = 0\n', r"camera\.interval_s"),
        ('bin_id = "b"\n[camera]\njitter = 1.5\n', r"camera\.jitter"),
        ('bin_id = "b"\n[mqtt]\nprotocol = "4"\n', r"mqtt\.protocol"),
        ('bin_id = "b"\n[mqtt]\nroot = "a/#"\n', r"mqtt\.root"),
        ('bin_id = "b"\n[mqtt]\nca_file = "ca.pem"\n', r"tls = false"),
        ('bin_id = "b"\n[updates]\nbase_url = "ftp://x"\n', r"base_url"),
        ('bin_id = "b"\n[camera]\nburst = 2\n[quality]\nmin_usable = 3\n', r"min_usable"),
        ('[camera]\nsource = "0"\n', r"bin_id: Field required"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    """Each bad config is refused with a message naming the key."""
    p = tmp_path / "d.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_toml(p, DeviceConfig)


def test_check_prints_resolved_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``device run --check`` prints the resolved config as JSON and exits 0."""
    p = tmp_path / "d.toml"
    p.write_text('bin_id = "b-1"\n[outbox]\npath = "state/o.db"\n')
    assert main(["device", "run", "--config", str(p), "--check"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["outbox"]["path"] == str(tmp_path / "state" / "o.db")
    assert printed["mqtt"]["protocol"] == "5"


def test_check_exits_1_naming_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown key: exit 1, the key named on stderr, nothing on stdout."""
    p = tmp_path / "d.toml"
    p.write_text('bin_id = "b-1"\n[mqtt]\nhots = "x"\n')
    assert main(["device", "run", "--config", str(p), "--check"]) == 1
    out = capsys.readouterr()
    assert "mqtt.hots: unknown key" in out.err and out.out == ""


def test_check_verifies_secrets_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A named password file that is missing, or a malformed public key, fails the check."""
    p = tmp_path / "d.toml"
    p.write_text('bin_id = "b-1"\n[mqtt]\nusername = "b-1"\npassword_file = "nope"\n')
    assert main(["device", "run", "--config", str(p), "--check"]) == 1
    assert "mqtt_password" in capsys.readouterr().err
    p.write_text('bin_id = "b-1"\n[updates]\npublic_key = "ed25519:abc"\n')
    assert main(["device", "run", "--config", str(p), "--check"]) == 1
    assert "updates.public_key" in capsys.readouterr().err


def _keys(model: type, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    out = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _keys(ann, f"{name}.")
        else:
            out.append(prefix + name)
    return out


def test_sample_mentions_every_key() -> None:
    """deploy/device.toml is the config reference: every key appears in it (set or commented)."""
    text = SAMPLE.read_text()
    sections: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        stripped = line.lstrip("# ").strip()
        if stripped.startswith("[") and "]" in stripped:
            current = stripped[1 : stripped.index("]")]
        sections.setdefault(current, "")
        sections[current] += stripped.split("=")[0].strip() + "\n"
    missing = []
    for key in _keys(DeviceConfig):
        section, _, name = key.rpartition(".")
        if name not in sections.get(section, "").split():
            missing.append(key)
    assert not missing, f"deploy/device.toml lacks {missing}"
