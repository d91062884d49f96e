"""deploy/compose.yaml and deploy/Containerfile: not run here (no container engine), but consistent.

Every file the compose file mounts from the repository exists, the server config it mounts is a
valid ``server.toml``, secrets reach the server under the names ``binsight.secrets`` looks up,
and the container file is multi-stage, installs ``.[server]`` and runs unprivileged.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
CONTAINERFILE = DEPLOY / "Containerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_services(compose: dict[str, Any]) -> None:
    """Mosquitto, PostgreSQL and the server, the server built from the Containerfile."""
    services = compose["services"]
    assert set(services) == {"mosquitto", "postgres", "server"}
    build = services["server"]["build"]
    assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == CONTAINERFILE


def test_repository_mounts_exist(compose: dict[str, Any]) -> None:
    """Every bind mount of a shipped file points at a file in deploy/ (secrets/ is the operator's)."""
    checked = 0
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./") and not source.startswith("./secrets/"):
                assert (DEPLOY / source).exists(), f"{source} is mounted but not in deploy/"
                checked += 1
    assert checked >= 4


def test_broker_mounts_match_config_paths(compose: dict[str, Any]) -> None:
    """The broker container gets its files exactly where mosquitto.conf names them."""
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    targets = {v.split(":")[1] for v in compose["services"]["mosquitto"]["volumes"]}
    for key in ("password_file", "acl_file", "include_dir", "persistence_location"):
        m = re.search(rf"(?m)^{key} (\S+)$", conf)
        assert m, f"mosquitto.conf has no {key}"
        assert m.group(1).rstrip("/") in targets, f"{key} {m.group(1)} is not mounted"


def test_server_secrets_reach_binsight_secrets(compose: dict[str, Any]) -> None:
    """The MQTT password arrives as BINSIGHT_MQTT_PASSWORD_FILE, a compose secret, not a value."""
    server = compose["services"]["server"]
    env = server["environment"]
    assert env["BINSIGHT_MQTT_PASSWORD_FILE"] == "/run/secrets/mqtt_password"
    assert "mqtt_password" in server["secrets"]
    assert not any("PASSWORD" in k and not k.endswith("_FILE") for k in env), "no secret in the environment"
    assert env["PGPASSFILE"] == "/run/secrets/pgpass"
    assert set(server["secrets"]) <= set(compose["secrets"])


def test_compose_server_toml_is_valid() -> None:
    """deploy/compose/server.toml loads with the server's own config model (unknown keys rejected)."""
    config_mod = pytest.importorskip("binsight.server.config")
    cfg = config_mod.load_server_config(DEPLOY / "compose" / "server.toml")
    assert cfg.mqtt.host == "mosquitto"
    assert cfg.mqtt.username == "binsight-server"
    assert cfg.database.startswith("postgresql+psycopg://binsight@postgres")
    assert cfg.http.port == 8000  # the Containerfile's HEALTHCHECK and compose's port mapping


def test_containerfile() -> None:
    """Multi-stage, installs the core and the server only, runs as a non-root user, health-checks /healthz."""
    text = CONTAINERFILE.read_text()
    assert len(re.findall(r"(?m)^FROM ", text)) >= 2
    assert "pip install ./core ./server" in text
    copied_dirs = {c.split()[0].rstrip("/") for c in re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", text)}
    assert copied_dirs == {"core", "server"}, "the server image holds neither device/ nor training/"
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text()
    assert {line[1:].rstrip("/") for line in ignore.splitlines() if line.startswith("!")} == copied_dirs
    users = re.findall(r"(?m)^USER (\S+)", text)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r"(?m)^HEALTHCHECK .*", text) and "/healthz" in text
    for copied in re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", text):
        for source in copied.split():
            assert (DEPLOY.parent / source).exists(), f"COPY {source}: not in the repository"


def test_device_containerfile() -> None:
    """The camera image: a multi-arch slim base, the core and the device only, no torch anywhere,
    unprivileged, running the agent; its ignore file lets nothing else into the build context."""
    path = DEPLOY / "Containerfile.device"
    text = path.read_text()
    assert re.search(r"(?m)^ARG PYTHON=python:3\.1[1-9]-slim", text), "a base published for amd64 and arm64"
    assert len(re.findall(r"(?m)^FROM ", text)) >= 2
    copied = [c.split() for c in re.findall(r"(?m)^COPY (?!--from)(.+)$", text)]
    assert {c[0].rstrip("/") for c in copied} == {"core", "device"}, "only the core and the device"
    ignore = (DEPLOY / "Containerfile.device.dockerignore").read_text()
    assert {line[1:].rstrip("/") for line in ignore.splitlines() if line.startswith("!")} == {
        "core",
        "device",
    }
    installs = re.findall(r"pip install ([^\n&\\]+)", text)
    assert any(i.split() == ["./core", "./device"] for i in installs), installs
    assert not any(re.search(r"torch|training|server", i) for i in installs), installs
    users = re.findall(r"(?m)^USER (\S+)", text)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'(?m)^CMD \["device", "run"', text)
    deps = tomllib.loads((DEPLOY.parent / "device" / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if re.match(r"torch|timm|onnx\b|binsight-(server|training)", d)], deps
