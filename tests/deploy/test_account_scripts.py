"""deploy/mosquitto/add-device.sh and add-server.sh: accounts, refusals with clear messages, rotation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from deploy_broker import DEPLOY

pytestmark = pytest.mark.skipif(shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd")


def run(script: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    acl = tmp_path / "acl"
    if not acl.exists():
        shutil.copy(DEPLOY / "acl", acl)
    paths = ["-p", str(tmp_path / "passwd"), "-a", str(acl), "-o", str(tmp_path / "out")]
    return subprocess.run([str(DEPLOY / script), *paths, *args], capture_output=True, text=True, timeout=30)


def users(tmp_path: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in (tmp_path / "passwd").read_text().splitlines()]


def test_add_device_creates_account_and_private_password(tmp_path: Path) -> None:
    """The hash goes to the password file, the password to OUT/BIN_ID/mqtt_password, mode 600."""
    out = run("add-device.sh", tmp_path, "bin-0001")
    assert out.returncode == 0, out.stderr
    assert users(tmp_path) == ["bin-0001"]
    secret = tmp_path / "out" / "bin-0001" / "mqtt_password"
    assert len(secret.read_text()) == 32 and secret.stat().st_mode & 0o777 == 0o600
    assert secret.read_text() not in (tmp_path / "passwd").read_text()


@pytest.mark.parametrize("bad", ["a/b", "bin#1", "bin+1", "-lead", "x" * 65, "bin 1", ""])
def test_add_device_rejects_bad_bin_ids(tmp_path: Path, bad: str) -> None:
    """Names that would break topics, the %u ACL or file names are refused, naming the problem."""
    out = run("add-device.sh", tmp_path, "--", bad)
    assert out.returncode != 0
    assert "invalid name" in out.stderr or "usage" in out.stderr
    assert not (tmp_path / "passwd").exists() or users(tmp_path) == []


def test_add_device_refuses_existing_unless_rotate(tmp_path: Path) -> None:
    """A second add is an error; --rotate replaces the password (and the hash)."""
    assert run("add-device.sh", tmp_path, "bin-1").returncode == 0
    secret = tmp_path / "out" / "bin-1" / "mqtt_password"
    first, first_hash = secret.read_text(), (tmp_path / "passwd").read_text()
    again = run("add-device.sh", tmp_path, "bin-1")
    assert again.returncode != 0 and "already has an account" in again.stderr
    assert run("add-device.sh", tmp_path, "--rotate", "bin-1").returncode == 0
    assert secret.read_text() != first and (tmp_path / "passwd").read_text() != first_hash
    assert users(tmp_path) == ["bin-1"]


def test_unknown_option_named(tmp_path: Path) -> None:
    """A typo in an option is an error naming it, not a bin id."""
    out = run("add-device.sh", tmp_path, "--rotat", "bin-1")
    assert out.returncode != 0 and "unknown option --rotat" in out.stderr


def test_device_names_cannot_take_server_accounts(tmp_path: Path) -> None:
    """binsight-server* names are reserved for servers; servers must use them."""
    out = run("add-device.sh", tmp_path, "binsight-server-9")
    assert out.returncode != 0 and "reserved for server accounts" in out.stderr
    out = run("add-server.sh", tmp_path, "bin-1")
    assert out.returncode != 0 and "start with binsight-server" in out.stderr


def test_add_server_appends_acl_block_once(tmp_path: Path) -> None:
    """A new server account gets the shipped server block's grants, once, with the same root."""
    assert run("add-server.sh", tmp_path).returncode == 0  # binsight-server: block already shipped
    assert (tmp_path / "acl").read_text() == (DEPLOY / "acl").read_text()
    assert run("add-server.sh", tmp_path, "binsight-server-2").returncode == 0
    assert run("add-server.sh", tmp_path, "--rotate", "binsight-server-2").returncode == 0
    acl = (tmp_path / "acl").read_text()
    assert acl.count("user binsight-server-2\n") == 1
    block = acl.split("user binsight-server-2\n", 1)[1].splitlines()
    assert block == [
        "topic read binsight/+/+",
        "topic write binsight/+/cmd",
        "topic write binsight/+/model",
        "topic write binsight/+/alert",
        "topic write binsight/_ha/#",
        "topic write homeassistant/#",
    ]
    assert users(tmp_path) == ["binsight-server", "binsight-server-2"]
