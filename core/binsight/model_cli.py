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
    s.set_defaults(func=_sign)


def _keygen(args: argparse.Namespace) -> int:
    from binsight.signing import keygen_command

    return keygen_command(args)


def _sign(args: argparse.Namespace) -> int:
    from binsight.signing import sign_command

    return sign_command(args)
