"""`binsight server token create | bins import | migrate | run --check` as a user runs them."""

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
