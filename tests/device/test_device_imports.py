"""The agent runs on ``binsight`` + ``binsight-device`` alone: no torch, sklearn, onnx, fastapi."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from device_support import write_config

FORBIDDEN = ("torch", "torchvision", "timm", "sklearn", "onnx", "onnxscript", "fastapi", "sqlalchemy",
             "alembic", "uvicorn", "ortools", "pyvrp", "skimage", "matplotlib")  # fmt: skip

_PROBE = """
import json, sys
from binsight.cli import main
rc = main(sys.argv[1:])
print(json.dumps({"rc": rc, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _modules(args: list[str]) -> tuple[int, set[str]]:
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120)
    last = out.stdout.strip().splitlines()[-1]
    data = json.loads(last)
    return int(data["rc"]), set(data["modules"])


def test_check_imports_nothing_outside_device_extra(tmp_path: Path) -> None:
    """``device run --check`` loads no forbidden module."""
    cfg = tmp_path / "d.toml"
    cfg.write_text('bin_id = "b-1"\n')
    rc, modules = _modules(["device", "run", "--config", str(cfg), "--check"])
    assert rc == 0
    assert not modules & set(FORBIDDEN)


@pytest.mark.broker
def test_running_agents_import_nothing_outside_device_extra(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path
) -> None:
    """A real run (simulate: capture, ONNX Runtime, MQTT, outbox, signing) loads no forbidden module."""
    cfg = write_config(tmp_path, bin_id="b-1", source=scenes, model=model_v1, port=mosquitto.port)
    rc, modules = _modules(
        ["device", "simulate", "--bins", "2", "--images", str(scenes), "--config", str(cfg),
         "--state-dir", str(tmp_path / "sim"), "--interval", "0.2", "--duration", "2"]
    )  # fmt: skip
    assert rc == 0
    assert {"onnxruntime", "cv2", "paho", "sqlite3"} <= modules
    assert not modules & set(FORBIDDEN), modules & set(FORBIDDEN)


@pytest.mark.broker
def test_run_leaves_the_release_key_to_the_updater(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path
) -> None:
    """``device run`` does not parse the release key (``--check`` does): no ``cryptography`` in a
    running agent until a release arrives, and a malformed key does not stop the readings."""
    from binsight.signing import format_public_key, generate_key

    good = format_public_key(generate_key().public_key())
    for key, expect_rc in ((good, 0), ("ed25519:abc", 0)):
        cfg = write_config(tmp_path, bin_id="b-1", source=scenes, model=model_v1, port=mosquitto.port,
                           loop=False, extra=f'[updates]\npublic_key = "{key}"\n')  # fmt: skip
        rc, modules = _modules(["device", "run", "--config", str(cfg)])
        assert rc == expect_rc
        assert "cryptography" not in modules
        rc, _ = _modules(["device", "run", "--config", str(cfg), "--check"])
        assert rc == (0 if key == good else 1)
