"""Back-testing: a replayed image's reading carries the time it was taken (mtime, name, EXIF)."""

from __future__ import annotations

import json
import os
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import pytest
from device_support import scene, write_config

from binsight.cli import main
from binsight.config import load_toml
from binsight.device.agent import Agent
from binsight.device.config import DeviceConfig
from binsight.device.frametime import FrameTimeError, exif_time, name_time
from binsight.device.sources import CameraError, ImageFolderSource, open_source
from binsight.errors import ConfigError


def ms(*args: int, tz: timezone | ZoneInfo = UTC) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_20240131_142501.jpg", ms(2024, 1, 31, 14, 25, 1)),
        ("2024-01-31T14-25-01.png", ms(2024, 1, 31, 14, 25, 1)),
        ("cam1 2024-01-31 14.25.01.jpg", ms(2024, 1, 31, 14, 25, 1)),
        ("20240131142501.jpg", ms(2024, 1, 31, 14, 25, 1)),
        ("bin-7_20240131_142501_0003.jpg", ms(2024, 1, 31, 14, 25, 1)),
        ("1706711101.jpg", 1706711101000),
        ("frame_1706711101123.png", 1706711101123),
    ],
)
def test_times_in_file_names(name: str, expected: int) -> None:
    assert name_time(name) == expected


def test_name_time_zone_and_bad_names() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert name_time("IMG_20240131_142501.jpg", berlin) == ms(2024, 1, 31, 13, 25, 1)
    with pytest.raises(FrameTimeError, match=r"'img0042.png'.*no capture time.*YYYYMMDD"):
        name_time("img0042.png")
    with pytest.raises(FrameTimeError, match="not a valid date"):
        name_time("IMG_20241331_142501.jpg")  # month 13


def _exif_jpeg(path: Path, when: str | None, offset: str | None = None, brightness: int = 120) -> Path:
    """A real JPEG (OpenCV) with an EXIF APP1 segment holding DateTimeOriginal (and an offset)."""
    ok, jpeg = cv2.imencode(".jpg", scene(brightness))
    assert ok
    body = jpeg.tobytes()
    if when is None:
        path.write_bytes(body)
        return path
    strings = [(0x9003, when.encode() + b"\0")]
    if offset is not None:
        strings.append((0x9011, offset.encode() + b"\0"))
    # Little-endian TIFF: header, IFD0 (one entry: Exif IFD pointer), Exif IFD, then the strings.
    ifd0_at = 8
    exif_at = ifd0_at + 2 + 12 + 4
    data_at = exif_at + 2 + 12 * len(strings) + 4
    tiff = b"II*\0" + struct.pack("<I", ifd0_at)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x8769, 4, 1, exif_at) + struct.pack("<I", 0)
    entries, blob = b"", b""
    for tag, value in strings:
        entries += struct.pack("<HHII", tag, 2, len(value), data_at + len(blob))
        blob += value
    tiff += struct.pack("<H", len(strings)) + entries + struct.pack("<I", 0) + blob
    app1 = b"Exif\0\0" + tiff
    path.write_bytes(body[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + body[2:])
    return path


def test_exif_times(tmp_path: Path) -> None:
    plain = _exif_jpeg(tmp_path / "a.jpg", "2023:07:04 09:30:15")
    assert exif_time(plain) == ms(2023, 7, 4, 9, 30, 15)
    assert exif_time(plain, ZoneInfo("America/New_York")) == ms(2023, 7, 4, 13, 30, 15)
    with_offset = _exif_jpeg(tmp_path / "b.jpg", "2023:07:04 09:30:15", "+02:00")
    assert exif_time(with_offset, ZoneInfo("America/New_York")) == ms(2023, 7, 4, 7, 30, 15), "offset wins"
    assert cv2.imread(str(with_offset)) is not None, "still a valid JPEG"
    with pytest.raises(FrameTimeError, match="no EXIF DateTimeOriginal"):
        exif_time(_exif_jpeg(tmp_path / "c.jpg", None))
    cv2.imwrite(str(tmp_path / "d.png"), scene(100))
    with pytest.raises(FrameTimeError, match="no EXIF"):
        exif_time(tmp_path / "d.png")


def test_folder_source_gives_each_frame_its_time(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"img{i}.png"), scene(80 + 20 * i))
        os.utime(folder / f"img{i}.png", ns=(0, (1_600_000_000 + 3600 * i) * 10**9))
    src = open_source(str(folder), timestamps="mtime", loop=False)
    assert isinstance(src, ImageFolderSource)
    times = []
    for _ in range(3):
        src.read_burst(1, 0.0)
        times.append(src.frame_time_ms)
    assert times == [(1_600_000_000 + 3600 * i) * 1000 for i in range(3)]
    clock = open_source(str(folder))
    clock.read_burst(1, 0.0)
    assert clock.frame_time_ms is None, "clock: the agent's clock decides"
    bad = ImageFolderSource(folder, timestamps="filename")
    with pytest.raises(CameraError, match=r"img0\.png"):
        bad.read_burst(1, 0.0)
    with pytest.raises(FrameTimeError, match="needs an image folder"):
        open_source("0", timestamps="exif")


def test_readings_carry_the_image_time(tmp_path: Path, model_v1: Path) -> None:
    """A back-test of named images: readings in the outbox have the names' times, in order."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    start = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
    names = []
    for i in range(4):
        name = f"bin-1_{(start + timedelta(hours=i)):%Y%m%d_%H%M%S}.png"
        cv2.imwrite(str(folder / name), scene(80 + 20 * i, seed=i))
        names.append(name)
    cfg_path = write_config(tmp_path, bin_id="bin-1", source=folder, model=model_v1, port=1, loop=False,
                            timestamps="filename")  # fmt: skip
    agent = Agent(load_toml(cfg_path, DeviceConfig))
    agent.load_initial_model()
    try:
        for _ in names:
            agent.capture_and_send()
        rows = agent.outbox.after(0, 100)
        ts = [json.loads(r.payload)["ts"] for r in rows if r.kind == "reading"]
    finally:
        agent.outbox.close()
    assert ts == [int((start + timedelta(hours=i)).timestamp() * 1000) for i in range(4)]


def test_a_name_without_a_time_stops_the_run_at_start(tmp_path: Path, model_v1: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """``device run`` (and ``--check``) exits 1 naming the image and the expected form."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    cv2.imwrite(str(folder / "IMG_20240131_142501.png"), scene(100))
    cv2.imwrite(str(folder / "holiday.png"), scene(110))
    cfg = write_config(tmp_path, bin_id="bin-1", source=folder, model=model_v1, port=1, timestamps="filename")
    for extra in (["--check"], []):
        assert main(["device", "run", "--config", str(cfg), *extra]) == 1
        err = capsys.readouterr().err
        assert "camera.timestamps" in err and "holiday.png" in err and "YYYYMMDD" in err
    (folder / "holiday.png").unlink()
    assert main(["device", "run", "--config", str(cfg), "--check"]) == 0


def test_config_rejects_times_for_live_cameras_and_unknown_zones(tmp_path: Path) -> None:
    cfg = tmp_path / "d.toml"
    cfg.write_text('bin_id = "b-1"\n[camera]\nsource = "0"\ntimestamps = "mtime"\n')
    with pytest.raises(ConfigError, match="needs an image folder"):
        load_toml(cfg, DeviceConfig)
    cfg.write_text('bin_id = "b-1"\n[camera]\ntimestamps_tz = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match="unknown time zone"):
        load_toml(cfg, DeviceConfig)
