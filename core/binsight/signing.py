"""Ed25519 signatures on model releases: key pairs, signing, verification.

A release is signed over :func:`binsight.protocol.release_manifest` (version, sha256, size, release
number, issue time), never over the file itself, so a device checks the signature on the
announcement before it downloads anything, and the file's hash after. Keys:

- private key: PKCS#8 PEM, written with mode 0600 (``binsight model keygen --out KEY``);
- public key: ``KEY.pub``, one line ``ed25519:<base64 of the 32 raw bytes>``, short enough to paste
  into ``device.toml`` (``[updates] public_key``). :func:`load_public_key` also reads PEM.

Needs only the ``cryptography`` package (in both the device and the server extras); a model file's
hash and metadata come from :mod:`binsight.modelfile`.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from binsight.errors import BinsightError
from binsight.modelfile import MODEL_VERSION, ModelFileError, file_sha256, model_version, read_props
from binsight.protocol import ModelRelease, release_manifest

__all__ = [
    "SignatureError",
    "format_public_key",
    "generate_key",
    "key_id",
    "keygen_command",
    "load_private_key",
    "load_public_key",
    "make_release",
    "parse_public_key",
    "sign_command",
    "sign_release",
    "verify_release",
]

_PUB_PREFIX = "ed25519:"


class SignatureError(BinsightError):
    """A release signature is missing, malformed or does not match the trusted key."""


def generate_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def format_public_key(key: Ed25519PublicKey) -> str:
    """``ed25519:<base64>``: the one-line form used in ``KEY.pub`` and ``device.toml``."""
    return _PUB_PREFIX + base64.b64encode(_raw_public(key)).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """A short fingerprint (16 hex digits of the sha256 of the raw key) to tell keys apart in logs."""
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Read ``ed25519:<base64>``, bare base64 of 32 bytes, or a PEM public key.

    Raises
    ------
    SignatureError
        The text is none of these.
    """
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode("ascii"))
        except ValueError as exc:
            raise SignatureError(f"not a valid PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SignatureError(f"public key is {type(key).__name__}, expected Ed25519")
        return key
    body = text.removeprefix(_PUB_PREFIX)
    try:
        raw = base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise SignatureError(f"public key is not base64: {exc}") from exc
    if len(raw) != 32:
        raise SignatureError(f"public key has {len(raw)} bytes, an Ed25519 key has 32")
    return Ed25519PublicKey.from_public_bytes(raw)


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read a public key file (``KEY.pub`` from keygen, or PEM)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SignatureError(f"cannot read public key {path}: {exc}") from exc
    try:
        return parse_public_key(text)
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc}") from exc


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM private key written by :func:`keygen_command`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read signing key {path}: {exc.strerror or exc}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{path}: not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{path}: key is {type(key).__name__}, expected Ed25519")
    return key


def sign_release(
    key: Ed25519PrivateKey,
    version: str,
    sha256: str,
    size: int,
    *,
    release_number: int | None = None,
    issued_at: int | None = None,
) -> str:
    """Base64 Ed25519 signature over :func:`release_manifest` (v2 with a release number, else v1)."""
    manifest = release_manifest(version, sha256, size, release_number=release_number, issued_at=issued_at)
    return base64.b64encode(key.sign(manifest)).decode("ascii")


def make_release(
    model: str | Path,
    key: Ed25519PrivateKey,
    version: str,
    url: str | None = None,
    *,
    release_number: int | None,
    issued_at: int | None = None,
) -> ModelRelease:
    """Hash ``model`` and sign a :class:`ModelRelease` for it.

    ``url`` defaults to the server's path ``/models/<version>.onnx``; devices resolve a relative URL
    against their ``[updates] base_url``. ``release_number`` must be above every number signed
    before with this key (devices refuse anything not newer); ``issued_at`` defaults to now.
    ``release_number=None`` makes an unnumbered v1 release, which devices that accepted a
    numbered one refuse: only for tests and devices still on v1.
    """
    sha, size = file_sha256(model)
    if release_number is not None and issued_at is None:
        issued_at = time.time_ns() // 1_000_000  # epoch ms
    return ModelRelease(
        version=version,
        url=url or f"/models/{version}.onnx",
        sha256=sha,
        size=size,
        signature=sign_release(key, version, sha, size, release_number=release_number, issued_at=issued_at),
        key_id=key_id(key.public_key()),
        release_number=release_number,
        issued_at=issued_at,
    )


def verify_release(public_key: Ed25519PublicKey, release: ModelRelease) -> None:
    """Check ``release.signature`` over :meth:`ModelRelease.manifest` against the trusted key.

    Raises
    ------
    SignatureError
        The signature is not base64, not 64 bytes, or does not verify.
    """
    try:
        sig = base64.b64decode(release.signature, validate=True)
    except binascii.Error as exc:
        raise SignatureError(f"release {release.version}: signature is not base64") from exc
    if len(sig) != 64:
        raise SignatureError(f"release {release.version}: signature has {len(sig)} bytes, expected 64")
    try:
        public_key.verify(sig, release.manifest())
    except InvalidSignature:
        raise SignatureError(
            f"release {release.version}: signature does not match the trusted key {key_id(public_key)}"
        ) from None


def _model_version(model: Path) -> str:
    """``binsight.model_version`` from the model's metadata (:mod:`binsight.modelfile` reads it)."""
    try:
        return model_version(read_props(model), model)
    except ModelFileError as exc:
        hint = ": pass --version" if exc.key == MODEL_VERSION else ""
        raise SignatureError(f"{exc}{hint}") from exc


def keygen_command(args: argparse.Namespace) -> int:
    """``binsight model keygen --out KEY``: write KEY (private, 0600) and KEY.pub."""
    out = Path(args.out)
    pub = out.with_name(out.name + ".pub")
    if out.exists():
        raise SignatureError(f"{out} exists: refusing to overwrite a signing key")
    key = generate_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub.write_text(format_public_key(key.public_key()) + "\n", encoding="ascii")
    print(f"private key: {out}\npublic key:  {pub} ({format_public_key(key.public_key())})")
    return 0


def sign_command(args: argparse.Namespace) -> int:
    """``binsight model sign MODEL --key KEY --release-number N``: write MODEL.release.json and print it."""
    model = Path(args.model)
    if not model.is_file():
        raise SignatureError(f"model file {model} does not exist")
    key = load_private_key(args.key)
    version = args.version or _model_version(model)
    release = make_release(model, key, version, args.url, release_number=args.release_number)
    out = model.with_name(model.name + ".release.json")
    text = json.dumps(release.model_dump(), indent=2) + "\n"
    out.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    print(f"written to {out}", file=sys.stderr)
    return 0
