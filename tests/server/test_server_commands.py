"""`binsight server token create|list|revoke | bins import | migrate | export-labels | run --check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from binsight.server.auth import hash_token
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import head_revision
from binsight.server.db.models import ApiToken, Bin


def _binsight(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "binsight", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_tokens(tmp_path: Path) -> None:
    """token create --role driver needs --truck; token list shows ids, never tokens; revoke refuses it."""
    conf = tmp_path / "server.toml"
    conf.write_text('database = "sqlite:///t.db"\n')
    r = _binsight("server", "token", "create", "--role", "driver", "--config", str(conf))
    assert r.returncode == 2 and "--truck" in r.stderr and r.stdout == ""
    r = _binsight(
        "server", "token", "create", "--role", "driver", "--truck", "truck-2", "--config", str(conf)
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    r = _binsight("server", "token", "list", "--config", str(conf))
    assert r.returncode == 0 and "driver-truck-2" in r.stdout and "truck-2" in r.stdout
    assert token not in r.stdout and hash_token(token) not in r.stdout
    r = _binsight("server", "token", "revoke", "1", "--config", str(conf))
    assert r.returncode == 0 and "revoked token 1 (driver-truck-2, driver)" in r.stderr
    r = _binsight("server", "token", "list", "--config", str(conf))
    assert "driver-truck-2" not in r.stdout and "(no tokens)" in r.stdout
    r = _binsight("server", "token", "list", "--all", "--config", str(conf))
    assert "REVOKED" in r.stdout
    r = _binsight("server", "token", "revoke", "7", "--config", str(conf))
    assert r.returncode == 1 and "no token with id 7" in r.stderr and "Traceback" not in r.stderr


def test_cli_round_trip(tmp_path: Path) -> None:
    """migrate, token create (token alone on stdout, stored hashed), bins import, and their errors."""
    conf = tmp_path / "server.toml"
    conf.write_text('database = "sqlite:///s.db"\n')
    r = _binsight("server", "migrate", "--config", str(conf))
    assert r.returncode == 0 and f"revision {head_revision()}" in r.stderr and r.stdout == ""

    r = _binsight("server", "token", "create", "--role", "labeller", "--config", str(conf), "--name", "ann")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert r.stdout == token + "\n" and token.startswith("bst_") and len(token) > 40
    engine = make_engine(f"sqlite:///{tmp_path / 's.db'}")
    with make_sessionmaker(engine)() as s:
        tok = s.execute(select(ApiToken)).scalar_one()
        assert (tok.name, tok.role, tok.token_hash) == ("ann", "labeller", hash_token(token))

    bins = tmp_path / "bins.csv"
    bins.write_text("bin_id,lat,lon,capacity_l\nb1,52.1,4.2,660\n")
    r = _binsight("server", "bins", "import", str(bins), "--config", str(conf))
    assert r.returncode == 0 and "1 new" in r.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("bin_id,lat,lon,capacity_l\nb2,52.1,4.2,660\nb3,north,4.2,660\n")
    r = _binsight("server", "bins", "import", str(bad), "--config", str(conf))
    assert r.returncode == 1 and "row 3, column lat: not a number" in r.stderr and "Traceback" not in r.stderr
    with make_sessionmaker(engine)() as s:
        assert [b.id for b in s.execute(select(Bin)).scalars()] == ["b1"]  # b2 not half-imported
    engine.dispose()


def test_export_labels_from_an_empty_server(tmp_path: Path) -> None:
    """An empty server exports a header-only labels.csv and no active model; a foreign folder is refused."""
    conf = tmp_path / "server.toml"
    conf.write_text('database = "sqlite:///s.db"\n')
    out = tmp_path / "export"
    r = _binsight("server", "export-labels", "--config", str(conf), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "exported 0 labelled images" in r.stderr and "(active model: none)" in r.stderr
    assert (out / "labels.csv").read_text() == "image,fill,bin_id,captured_at\n"
    assert '"active": null' in (out / "server.json").read_text()

    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    r = _binsight("server", "export-labels", "--config", str(conf), "--out", str(tmp_path / "notes"))
    assert r.returncode == 1 and "neither empty nor an earlier export" in r.stderr
    assert "Traceback" not in r.stderr and (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_config_errors_exit_1(tmp_path: Path) -> None:
    """A bad key is one line naming it and exit 1; --check prints the resolved config."""
    conf = tmp_path / "server.toml"
    conf.write_text("[mqtt]\nprot = 1\n")
    r = _binsight("server", "run", "--config", str(conf))
    assert r.returncode == 1 and "mqtt.prot: unknown key" in r.stderr and "Traceback" not in r.stderr
    conf.write_text('database = "sqlite:///x.db"\n')
    r = _binsight("server", "run", "--check", "--config", str(conf))
    assert r.returncode == 0 and str(tmp_path.resolve() / "x.db") in r.stdout
    r = _binsight("server", "token", "create", "--role", "root", "--config", str(conf))
    assert r.returncode == 2 and "invalid choice" in r.stderr
