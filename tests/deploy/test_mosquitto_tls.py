"""deploy/mosquitto: the shipped TLS listener example with certificates from make-dev-certs.sh."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy_broker import DEPLOY, DeployBroker, Session

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def certs(deploy_root: Path) -> Path:
    """A dev CA and broker certificate made by the shipped script."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: make-dev-certs.sh needs it")
    out = deploy_root / "certs"
    subprocess.run([str(DEPLOY / "make-dev-certs.sh"), str(out), "broker.example.org"], check=True,
                   capture_output=True)  # fmt: skip
    return out


@pytest.fixture(scope="module")
def tls_broker(deploy_root: Path, certs: Path) -> Iterator[DeployBroker]:
    """The deploy config with its commented TLS example switched on."""
    b = DeployBroker(deploy_root / "tls", cert_dir=certs)
    b.root.mkdir()
    b.render()
    b.add_device("bin-1")
    b.add_server()
    b.start()
    try:
        yield b
    finally:
        b.stop()


def test_dev_certs_verify(certs: Path) -> None:
    """The broker certificate chains to the dev CA and names the host it was made for."""
    subprocess.run(
        ["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / "server.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    san = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "subjectAltName"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "DNS:broker.example.org" in san and "IP Address:127.0.0.1" in san
    assert (certs / "ca.key").stat().st_mode & 0o077 == 0, "the CA key must be private"


def test_device_over_tls_reaches_server(tls_broker: DeployBroker, sessions: list[Session]) -> None:
    """A device that trusts the dev CA connects on the TLS port; its reading reaches the server."""
    assert tls_broker.tls_port is not None and tls_broker.cert_dir is not None
    server = Session(tls_broker.port, "binsight-server", tls_broker.passwords["binsight-server"])
    sessions.append(server)
    assert server.connect()
    server.subscribe("binsight/+/reading")
    device = Session(
        tls_broker.tls_port, "bin-1", tls_broker.passwords["bin-1"], ca_file=tls_broker.cert_dir / "ca.crt"
    )
    sessions.append(device)
    assert device.connect(), device.reason
    payload = {"bin_id": "bin-1", "seq": 1, "ts": 1, "fill": 0.25, "quality": "ok", "model": "m"}
    assert not device.publish("binsight/bin-1/reading", json.dumps(payload)).is_failure
    assert json.loads(server.received().payload) == payload


def test_tls_client_without_the_ca_refused(tls_broker: DeployBroker, sessions: list[Session]) -> None:
    """A client that does not trust the dev CA fails certificate verification."""
    assert tls_broker.tls_port is not None
    device = Session(tls_broker.tls_port, "bin-1", tls_broker.passwords["bin-1"])
    device.client.tls_set()  # the system's CAs only
    sessions.append(device)
    with pytest.raises(ssl.SSLCertVerificationError):
        device.connect()


def test_tls_listener_still_needs_a_password(tls_broker: DeployBroker, sessions: list[Session]) -> None:
    """TLS does not replace the password: the same accounts and ACL apply on the TLS port."""
    assert tls_broker.tls_port is not None and tls_broker.cert_dir is not None
    s = Session(tls_broker.tls_port, "bin-1", "wrong", ca_file=tls_broker.cert_dir / "ca.crt")
    sessions.append(s)
    assert not s.connect()
