"""bins import: CSV and GeoJSON, every bad row named (file, row, column), nothing half-imported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from binsight.errors import DataError
from binsight.server.bins_import import import_bins, read_bins
from binsight.server.db.models import Bin

HEADER = "bin_id,lat,lon,capacity_l,name,site,service_min,window_start,window_end\n"


def test_csv_and_geojson(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """Both formats import; a second import updates in place."""
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text(HEADER + "b1,52.37,4.89,1100,Dam 1,centre,3,07:00,11:00\nb2,52.38,4.90,240,,,,,\n")
    gj = tmp_path / "bins.geojson"
    gj.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [4.91, 52.39]},
                        "properties": {"bin_id": "b3", "capacity_l": 660, "site": "east"},
                    },
                    {
                        "type": "Feature",
                        "geometry": {"type": "Point", "coordinates": [4.5, 52.0]},
                        "properties": {"bin_id": "b1", "capacity_l": 1200},
                    },
                ],
            }
        )
    )
    with sessions() as s, s.begin():
        assert import_bins(s, read_bins(csv_file)) == (2, 0)
    with sessions() as s, s.begin():
        assert import_bins(s, read_bins(gj)) == (1, 1)
    with sessions() as s:
        b1 = s.get(Bin, "b1")
        assert b1 is not None and (b1.lat, b1.lon, b1.capacity_l, b1.registered) == (52.0, 4.5, 1200, True)
        b3 = s.get(Bin, "b3")
        assert b3 is not None and b3.site == "east"
        assert s.execute(select(func.count()).select_from(Bin)).scalar_one() == 3


def test_row_errors_all_reported(tmp_path: Path) -> None:
    """Every bad row is reported with file, row and column; the message says nothing was imported."""
    f = tmp_path / "bad.csv"
    f.write_text(
        HEADER + "ok1,52,4,100,,,,,\n"
        "bad id,52,4,100,,,,,\n"
        "b3,91,4,100,,,,,\n"
        "b4,52,east,100,,,,,\n"
        "b5,52,4,0,,,,,\n"
        "b6,52,4,100,,,,25:00,\n"
        "b7,52,4,,,,,,\n"
        "ok1,52,4,100,,,,,\n"
    )
    with pytest.raises(DataError) as err:
        read_bins(f)
    msg = str(err.value)
    assert "nothing imported" in msg
    for expected in (
        "row 3, column bin_id",
        "row 4, column lat: 91 is outside",
        "row 5, column lon: not a number",
        "row 6, column capacity_l",
        "row 7, column window_start",
        "row 8, column capacity_l: missing",
        "'ok1' appears more than once",
    ):
        assert expected in msg, expected
    assert str(f) in msg


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("h.csv", "bin_id,lat,lon\nb1,1,2\n", r"row 1 \(header\): missing column\(s\) capacity_l"),
        ("h.csv", "bin_id,lat,lon,capacity_l,colour\n", r"unknown column\(s\) colour"),
        ("e.csv", HEADER, "no bins"),
        ("x.geojson", "{", "not valid JSON"),
        ("x.geojson", '{"type": "Feature"}', "not a GeoJSON FeatureCollection"),
        (
            "x.geojson",
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": '
            '{"type": "LineString", "coordinates": []}, "properties": {}}]}',
            "feature 0, column geometry",
        ),
    ],
)
def test_bad_files(tmp_path: Path, name: str, content: str, match: str) -> None:
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(DataError, match=match):
        read_bins(f)


@pytest.mark.postgres
def test_import_races_ingest_creating_the_bin(pg_url: str) -> None:
    """Issue #17: the ingest inserts a bare bin while an import of it is under way; the import wins."""
    import threading

    from binsight.server.bins_import import BinRow
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade
    from binsight.server.ingest.store import BinRegistry

    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    ingest = sessions()
    ingest.begin()
    BinRegistry().ensure_present(ingest, ["bin-1"], 1)  # the bare bin, not committed yet
    outcome: list[object] = []

    def run_import() -> None:
        try:
            with sessions() as s, s.begin():  # blocks on the ingest's uncommitted row
                outcome.append(import_bins(s, [BinRow("bin-1", 52.0, 4.0, 1100.0, name="Dam")]))
        except Exception as e:
            outcome.append(e)

    worker = threading.Thread(target=run_import)
    worker.start()
    worker.join(0.5)
    ingest.commit()
    ingest.close()
    worker.join(10)
    assert outcome == [(0, 1)]
    with sessions() as s:
        b = s.get(Bin, "bin-1")
        assert b is not None and b.registered and b.name == "Dam" and b.lat == 52.0
    engine.dispose()


def test_import_registers_a_bin_the_ingest_created(sessions: sessionmaker[Session]) -> None:
    """A bin first seen on MQTT (bare) is updated in place by the import, not inserted twice."""
    from binsight.server.bins_import import BinRow
    from binsight.server.ingest.store import BinRegistry

    with sessions() as s, s.begin():
        BinRegistry().ensure_present(s, ["bin-1"], 1)
    with sessions() as s, s.begin():
        assert import_bins(s, [BinRow("bin-1", 52.0, 4.0, 660.0), BinRow("bin-2", 52.1, 4.1, 240.0)]) == (
            1,
            1,
        )
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Bin).where(Bin.registered.is_(True))) == 2


def test_address_column_and_property(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    """``address`` (CSV column or GeoJSON property) is stored on one line; too long is a named error."""
    csv_file = tmp_path / "bins.csv"
    csv_file.write_text(
        "bin_id,lat,lon,capacity_l,name,address\n"
        'b1,52.09,5.12,1100,Dom,"Domplein  29,\n 3512 JE Utrecht"\n'
        "b2,52.10,5.11,240,,\n"
    )
    gj = tmp_path / "bins.geojson"
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [5.13, 52.08]},
        "properties": {"bin_id": "b3", "capacity_l": 660, "address": "Maliebaan 12, Utrecht"},
    }
    gj.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    with sessions() as s, s.begin():
        import_bins(s, read_bins(csv_file) + read_bins(gj))
    with sessions() as s:
        addresses = {b.id: b.address for b in s.execute(select(Bin)).scalars()}
    assert addresses == {"b1": "Domplein 29, 3512 JE Utrecht", "b2": None, "b3": "Maliebaan 12, Utrecht"}
    long = tmp_path / "long.csv"
    long.write_text("bin_id,lat,lon,capacity_l,address\n" + f"b1,52,5,100,{'x' * 301}\n")
    with pytest.raises(DataError, match="row 2, column address: longer than 300 characters"):
        read_bins(long)
