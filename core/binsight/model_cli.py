"""``binsight model ...``: signing keys and model signatures (needs the ``cryptography`` package)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("model", help="sign model files for release")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    k = msub.add_parser("keygen", help="create an Ed25519 signing key pair")
    k.add_argument("--out", required=True, help="private key file (the public key goes to OUT.pub)")
    k.set_defaults(func=_keygen)
    s = msub.add_parser("sign", help="sign a model file; writes MODEL.onnx.release.json")
    s.add_argument("model")
    s.add_argument("--key", required=True, help="private key file from keygen")
    s.add_argument("--version", default=None, help="release version (default: from the model metadata)")
    s.add_argument("--url", default=None, help="download URL to put in the release")
    s.add_argument(
        "--release-number",
        type=_release_number,
        required=True,
        metavar="N",
        help="release number, above every one signed before with this key: devices refuse any "
        "release not newer than the highest they accepted (the server's is in GET /api/rollout)",
    )
    s.set_defaults(func=_sign)


def _release_number(text: str) -> int:
    """A release number: a whole number from 1 to 2**63 - 1."""
    from binsight.protocol import MAX_RELEASE_NUMBER

    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= number <= MAX_RELEASE_NUMBER:
        raise argparse.ArgumentTypeError(f"{number} is outside 1..{MAX_RELEASE_NUMBER}")
    return number


def _keygen(args: argparse.Namespace) -> int:
    from binsight.signing import keygen_command

    return keygen_command(args)


def _sign(args: argparse.Namespace) -> int:
    from binsight.signing import sign_command

    return sign_command(args)
