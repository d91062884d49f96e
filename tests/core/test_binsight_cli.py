"""The one `binsight` command: dispatch, light imports, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from binsight.cli import main


def test_help_lists_every_side(capsys: object) -> None:
    """`binsight --help` names every part's sub-commands."""
    proc = subprocess.run([sys.executable, "-m", "binsight", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for cmd in ("demo", "train", "device", "server", "route", "model"):
        assert cmd in proc.stdout


def test_device_help_imports_nothing_heavy() -> None:
    """`binsight device --help` works with binsight + binsight-device alone: no torch, sklearn, fastapi."""
    code = textwrap.dedent(
        """
        import sys
        from binsight.cli import main
        try:
            main(["device", "run", "--help"])
        except SystemExit:
            pass
        heavy = {"torch", "sklearn", "timm", "fastapi", "ortools", "sqlalchemy", "pyvrp", "cv2",
                 "onnxruntime"}
        loaded = sorted(heavy & set(sys.modules))
        print("LOADED", loaded)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr


def test_group_without_action_shows_help(capsys: object) -> None:
    """A group without its action prints its help instead of a traceback."""
    try:
        rc = main(["train"])
    except SystemExit as exc:
        rc = int(exc.code or 0)
    assert rc in (0, 2)
