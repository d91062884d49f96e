"""server.toml: deploy/server.toml's keys, unknown keys rejected by name, paths resolved next to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from binsight.errors import ConfigError
from binsight.server.config import load_server_config


def test_design_example_and_defaults(tmp_path: Path) -> None:
    """deploy/server.toml loads; the SQLite path is resolved against the config's folder."""
    p = tmp_path / "server.toml"
    p.write_text(
        'database = "sqlite:///binsight.db"\n[mqtt]\nhost = "127.0.0.1"\nport = 1883\n'
        '[http]\nhost = "127.0.0.1"\nport = 8000\n'
    )
    cfg = load_server_config(p)
    assert cfg.database == f"sqlite:///{tmp_path.resolve() / 'binsight.db'}"
    assert cfg.ingest.shared_group == "binsight" and cfg.forecast.threshold == 0.8
    assert cfg.models.dir == (tmp_path / "models").resolve()


def test_postgres_url_uses_psycopg3(tmp_path: Path) -> None:
    p = tmp_path / "s.toml"
    p.write_text('database = "postgresql://u@db/binsight"\n')
    assert load_server_config(p).database == "postgresql+psycopg://u@db/binsight"


def test_deploy_sample_loads() -> None:
    """deploy/server.toml is a valid config (fleet, ingest, forecast sections included)."""
    cfg = load_server_config(Path(__file__).resolve().parents[2] / "deploy" / "server.toml")
    assert cfg.fleet.trucks and cfg.fleet.depots and cfg.database.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("toml", "match"),
    [
        ("[mqtt]\nprot = 1\n", r"mqtt\.prot: unknown key"),
        ("[ingest]\nbatch_size = 0\n", r"ingest\.batch_size"),
        ('[forecast]\ntimezone = "Mars/Olympus"\n', r"forecast\.timezone: .*unknown time zone"),
        ('database = "mysql://x"\n', r"database: .*sqlite:/// or postgresql://"),
        ('[[fleet.trucks]]\nid = "t"\ndepot = "nowhere"\ncapacity_l = 1\n', r"depot 'nowhere' is not in"),
        (
            '[[fleet.depots]]\nid = "d"\nlat = 1\nlon = 1\n[[fleet.trucks]]\nid = "t"\ndepot = "d"\n'
            'capacity_l = 1\nshift = ["14:00", "06:00"]\n',
            r"shift end 06:00 is not after",
        ),
        ('[fleet]\nservice_days = ["someday"]\n', r"fleet\.service_days\.0"),
        ('[fleet]\nengine = "fastest"\n', r"fleet\.engine: .*'auto', 'pyvrp', 'ortools' or 'portfolio'"),
        ("[fleet]\nengine = 2\n", r"fleet\.engine"),
    ],
)
def test_bad_configs_name_the_key(tmp_path: Path, toml: str, match: str) -> None:
    """Each bad config is a ConfigError naming the key and the problem."""
    p = tmp_path / "s.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError, match=match):
        load_server_config(p)


@pytest.mark.parametrize("engine", ["auto", "pyvrp", "ortools", "portfolio"])
def test_fleet_engine(tmp_path: Path, engine: str) -> None:
    """[fleet] engine takes each route engine; absent, it is auto."""
    p = tmp_path / "s.toml"
    p.write_text(f'[fleet]\nengine = "{engine}"\n')
    assert load_server_config(p).fleet.engine == engine
    p.write_text("[fleet]\n")
    assert load_server_config(p).fleet.engine == "auto"
