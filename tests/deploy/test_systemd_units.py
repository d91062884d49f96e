"""deploy/systemd: the units parse, carry their hardening, and pass systemd's own checks."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "deploy" / "systemd"
SERVER = SYSTEMD / "binsight-server.service"
AGENT = SYSTEMD / "binsight-agent.service"
INSTALLED_BINSIGHT = "/opt/binsight/bin/binsight"

Unit = dict[str, list[tuple[str, str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> (key, value) pairs in order; repeated keys kept, continuation lines joined."""
    unit: Unit = {}
    section: str | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if m := re.fullmatch(r"\[([^\]]+)\]", line):
            section = m.group(1)
            unit.setdefault(section, [])
            continue
        assert section is not None, f"key outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        unit[section].append((key.strip(), value.strip()))
    return unit


def values(unit: Unit, key: str, section: str = "Service") -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def last(unit: Unit, key: str, section: str = "Service") -> str | None:
    found = values(unit, key, section)
    return found[-1] if found else None


def test_parse_unit_handles_repeats_and_continuations() -> None:
    """The little parser keeps repeated keys and joins backslash continuations."""
    unit = parse_unit("[Service]\n# c\nA=1\nA=2\nB=x \\\n  y\n")
    assert values(unit, "A") == ["1", "2"]
    assert last(unit, "B") == "x y"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictSUIDSGID", "yes"),
        ("SystemCallArchitectures", "native"),
        ("UMask", "0077"),
        ("Restart", "on-failure"),
    ],
)
def test_server_unit_hardening(key: str, expected: str) -> None:
    """The server unit sets each hardening key to the hardened value."""
    assert last(parse_unit(SERVER.read_text()), key) == expected


def test_server_unit_state_and_secrets() -> None:
    """State lives in a StateDirectory; the MQTT password arrives as a systemd credential."""
    unit = parse_unit(SERVER.read_text())
    assert last(unit, "StateDirectory") == "binsight"
    creds = dict(v.split(":", 1) for v in values(unit, "LoadCredential"))
    # binsight.secrets reads $CREDENTIALS_DIRECTORY/<name>; the server asks for "mqtt_password".
    assert "mqtt_password" in creds
    assert "@system-service" in values(unit, "SystemCallFilter")
    exec_start = last(unit, "ExecStart")
    assert exec_start is not None and " server run --config " in exec_start
    assert not values(unit, "Environment") or all(
        "PASSWORD" not in v.upper() for v in values(unit, "Environment")
    )


def test_server_unit_is_watched() -> None:
    """The server tells systemd when it is ready and pings its watchdog (binsight.sdnotify): a dead
    thread or a hung process gets it restarted."""
    unit = parse_unit(SERVER.read_text())
    assert last(unit, "Type") == "notify"
    assert last(unit, "NotifyAccess") == "main"  # the pings come from the server's own process
    watchdog = last(unit, "WatchdogSec")
    assert watchdog is not None and watchdog.endswith("s") and 10 <= int(watchdog[:-1]) <= 300
    assert last(unit, "Restart") == "on-failure"  # exit 1 (a dead thread) and a watchdog kill restart it


def test_sample_server_toml_writes_only_into_the_state_directory() -> None:
    """deploy/server.toml, run by this unit, keeps everything it writes under its StateDirectory.

    ProtectSystem=strict makes every other path read-only, so a models folder or SQLite file
    elsewhere would fail at the first write.
    """
    config_mod = pytest.importorskip("binsight.server.config")
    sample = SYSTEMD.parent / "server.toml"
    if not sample.exists():
        pytest.skip("deploy/server.toml not written yet")
    cfg = config_mod.load_server_config(sample)
    unit = parse_unit(SERVER.read_text())
    state = Path("/var/lib") / (last(unit, "StateDirectory") or "?")
    assert cfg.models.dir.is_relative_to(state), f"[models] dir {cfg.models.dir} is outside {state}"
    if cfg.database.startswith("sqlite"):
        path = Path(cfg.database.split(":///", 1)[1])
        assert path.is_relative_to(state), f"database {path} is outside {state}"
    exec_start = last(unit, "ExecStart") or ""
    assert exec_start.endswith("--config /etc/binsight/server.toml")
    assert last(unit, "ConfigurationDirectory") == "binsight"


def test_postgresql_dropin_passes_password_as_credential() -> None:
    """The PostgreSQL drop-in hands libpq a pgpass file from the credentials directory."""
    unit = parse_unit((SYSTEMD / "binsight-server.service.d" / "postgresql.conf").read_text())
    assert any(v.startswith("pgpass:") for v in values(unit, "LoadCredential"))
    assert "PGPASSFILE=%d/pgpass" in values(unit, "Environment")


def test_model_signing_dropin_passes_key_as_credential() -> None:
    """The signing drop-in hands the server its release key under the name binsight.secrets reads."""
    unit = parse_unit((SYSTEMD / "binsight-server.service.d" / "model-signing.conf").read_text())
    assert [v.split(":", 1)[0] for v in values(unit, "LoadCredential")] == ["model_signing_key"]


def test_alerts_dropin_passes_secret_as_credential() -> None:
    """The alerts drop-in hands the server its webhook HMAC key under the name binsight.secrets reads."""
    unit = parse_unit((SYSTEMD / "binsight-server.service.d" / "alerts.conf").read_text())
    assert [v.split(":", 1)[0] for v in values(unit, "LoadCredential")] == ["alert_secret"]
    assert read_secret_name_used() == "alert_secret"


def read_secret_name_used() -> str:
    """The credential name the webhook sender asks binsight.secrets for (alerts.py)."""
    source = (Path(__file__).resolve().parents[2] / "server/binsight/server/alerts.py").read_text()
    (name,) = re.findall(r'read_secret\("(\w+)"', source)
    return name


def test_agent_unit_hardening() -> None:
    """The agent unit (written with the device agent) runs unprivileged on a read-only system."""
    if not AGENT.exists():
        pytest.skip("deploy/systemd/binsight-agent.service not written yet")
    unit = parse_unit(AGENT.read_text())
    assert last(unit, "DynamicUser") == "yes" or last(unit, "User") not in (None, "root")
    assert last(unit, "NoNewPrivileges") == "yes"
    assert last(unit, "ProtectSystem") == "strict"
    assert last(unit, "StateDirectory")


def _rendered_units(tmp_path: Path) -> list[Path]:
    """Copies of the units whose ExecStart points at this checkout's binsight (it must exist)."""
    binsight = Path(sys.executable).parent / "binsight"
    if not binsight.exists():
        pytest.skip(f"{binsight} not installed")
    out = tmp_path / "units"
    shutil.copytree(SYSTEMD, out)
    units = sorted(out.glob("*.service"))
    for unit in units:
        unit.write_text(unit.read_text().replace(INSTALLED_BINSIGHT, str(binsight)))
    return units


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` (with the drop-ins) reports nothing about our units."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    units = _rendered_units(tmp_path)
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, units)],
        capture_output=True, text=True, timeout=60,
        env={"SYSTEMD_UNIT_PATH": f"{tmp_path / 'units'}:", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    ours = [line for line in (out.stdout + out.stderr).splitlines() if str(tmp_path) in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr


def test_server_unit_security_exposure(tmp_path: Path) -> None:
    """`systemd-analyze security` rates the server unit's exposure at most 2.0 of 10."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    server = next(u for u in _rendered_units(tmp_path) if u.name == SERVER.name)
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--threshold=20", str(server)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr


def test_mosquitto_dropin_verifies_with_the_packaged_unit(tmp_path: Path) -> None:
    """The mosquitto.service drop-in applies cleanly on top of the distribution's unit."""
    packaged = Path("/lib/systemd/system/mosquitto.service")
    if shutil.which("systemd-analyze") is None or not packaged.exists():
        pytest.skip("needs systemd-analyze and the packaged mosquitto.service")
    units = tmp_path / "units"
    shutil.copytree(SYSTEMD / "mosquitto.service.d", units / "mosquitto.service.d")
    shutil.copy(packaged, units)
    unit = parse_unit((SYSTEMD / "mosquitto.service.d" / "binsight.conf").read_text())
    assert int(last(unit, "LimitNOFILE") or 0) >= 16384
    out = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(units / "mosquitto.service")],
        capture_output=True, text=True, timeout=60,
        env={"SYSTEMD_UNIT_PATH": f"{units}:", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    ours = [line for line in (out.stdout + out.stderr).splitlines() if str(tmp_path) in line]
    assert out.returncode == 0 and not ours, out.stdout + out.stderr
