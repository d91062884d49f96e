"""Ed25519 release signatures: keygen, sign, verify; tampering and foreign keys refused."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from binsight.cli import main
from binsight.modelfile import file_sha256
from binsight.protocol import ModelRelease, release_manifest
from binsight.signing import (
    SignatureError,
    format_public_key,
    generate_key,
    load_private_key,
    load_public_key,
    make_release,
    parse_public_key,
    verify_release,
)


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"model bytes " * 100)
    return p


def test_sign_and_verify(model_file: Path) -> None:
    """A release made with a key verifies with its public key and carries hash and size."""
    key = generate_key()
    release = make_release(model_file, key, "v1", release_number=3)
    assert (release.sha256, release.size) == file_sha256(model_file)
    assert release.url == "/models/v1.onnx"
    assert release.release_number == 3 and release.issued_at is not None and release.issued_at > 0
    assert release.manifest().startswith(b"binsight-model-release:v2\n")
    verify_release(key.public_key(), release)


def test_unnumbered_v1_release_still_verifies(model_file: Path) -> None:
    """A release signed before release numbers (manifest v1) keeps its signature valid."""
    key = generate_key()
    release = make_release(model_file, key, "v1", release_number=None)
    assert release.release_number is None and release.issued_at is None
    assert release.manifest() == release_manifest("v1", release.sha256, release.size)
    assert release.manifest().startswith(b"binsight-model-release:v1\n")
    verify_release(key.public_key(), release)
    # The v1 signature does not carry over to a number added afterwards.
    with pytest.raises(SignatureError):
        verify_release(key.public_key(), release.model_copy(update={"release_number": 9, "issued_at": 1}))


@pytest.mark.parametrize(
    "fields",
    [
        {"release_number": 1},
        {"issued_at": 1},
        {"release_number": 0, "issued_at": 1},
        {"release_number": 2**63, "issued_at": 1},
        {"signature": "A" * 300},
    ],
)
def test_malformed_release_numbers_rejected(fields: dict[str, object]) -> None:
    """Number and issue time come together, the number is 1..2**63-1, the signature is short."""
    base = {"version": "v1", "url": "/m", "sha256": "0" * 64, "size": 1, "signature": "AAAA"}
    with pytest.raises(ValidationError):
        ModelRelease.model_validate({**base, **fields})


@pytest.mark.parametrize(
    "change",
    [
        {"version": "v2"},
        {"sha256": "0" * 64},
        {"size": 1},
        {"release_number": 8},
        {"issued_at": 1},
        {"signature": "AAAA"},
        {"signature": "!!"},
    ],
)
def test_tampered_release_refused(model_file: Path, change: dict[str, object]) -> None:
    """Changing version, hash, size, release number or issue time, or the signature, breaks verification."""
    key = generate_key()
    release = make_release(model_file, key, "v1", release_number=7).model_copy(update=change)
    with pytest.raises(SignatureError):
        verify_release(key.public_key(), release)


def test_foreign_key_refused(model_file: Path) -> None:
    """A release signed by another key does not verify."""
    release = make_release(model_file, generate_key(), "v1", release_number=1)
    with pytest.raises(SignatureError, match="does not match the trusted key"):
        verify_release(generate_key().public_key(), release)


@pytest.mark.parametrize(
    "text", ["ed25519:abc", "ed25519:" + "A" * 40, "-----BEGIN PUBLIC KEY-----\nxx\n", ""]
)
def test_bad_public_keys(text: str) -> None:
    """Malformed public keys are refused with a SignatureError."""
    with pytest.raises(SignatureError):
        parse_public_key(text)


def test_keygen_and_sign_commands(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``binsight model keygen`` writes a 0600 key and KEY.pub; ``sign`` writes a verifiable release."""
    key = tmp_path / "release.key"
    assert main(["model", "keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = load_public_key(tmp_path / "release.key.pub")
    assert format_public_key(pub) == format_public_key(load_private_key(key).public_key())
    assert main(["model", "keygen", "--out", str(key)]) == 1  # never overwrites a key
    capsys.readouterr()
    sign = ["model", "sign", str(model_file), "--key", str(key), "--version", "v7", "--url", "http://s/m"]
    assert main([*sign, "--release-number", "12"]) == 0
    release = ModelRelease.model_validate(json.loads(capsys.readouterr().out))
    assert release.version == "v7" and release.url == "http://s/m" and release.release_number == 12
    verify_release(pub, release)
    saved = json.loads((tmp_path / "m.onnx.release.json").read_text())
    assert saved == release.model_dump()


def test_sign_reads_version_from_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --version the release takes binsight.model_version from the model's metadata."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    inp = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])
    out = helper.make_tensor_value_info("o", TensorProto.UINT8, ["N", "H", "W", 3])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["o"])], "g", [inp], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    helper.set_model_props(model, {"binsight.model_version": "20261129T221500Z-abc"})
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    key = tmp_path / "k"
    main(["model", "keygen", "--out", str(key)])
    capsys.readouterr()
    assert main(["model", "sign", str(path), "--key", str(key), "--release-number", "1"]) == 0
    release = ModelRelease.model_validate(json.loads(capsys.readouterr().out))
    assert release.version == "20261129T221500Z-abc"
    assert release.url == "/models/20261129T221500Z-abc.onnx"


def test_sign_errors_are_clear(tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing model, bad key file: exit 1 with a message naming the file."""
    assert main(["model", "sign", str(tmp_path / "nope.onnx"), "--key", "k", "--release-number", "1"]) == 1
    assert "nope.onnx does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    assert main(["model", "sign", str(model_file), "--key", str(bad), "--release-number", "1"]) == 1
    assert "bad.key" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("number", "needle"),
    [(None, "--release-number"), ("0", "outside 1.."), ("x", "'x' is not a whole number")],
)
def test_sign_needs_a_valid_release_number(
    model_file: Path, number: str | None, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sign`` without a release number, or with one outside 1..2**63-1, is a usage error naming it."""
    args = ["model", "sign", str(model_file), "--key", "k"] + (["--release-number", number] if number else [])
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    assert needle in capsys.readouterr().err
