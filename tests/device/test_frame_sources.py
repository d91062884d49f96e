"""Frame sources: image folders in natural order, looping or not; video files; bad sources."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from device_support import scene

from binsight.device.sources import CameraError, EndOfSource, ImageFolderSource, VideoSource, open_source


def _folder(tmp_path: Path, names: list[str]) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), scene(50 + 20 * i, seed=i))
    (folder / "notes.txt").write_text("not an image")
    return folder


def _brightness(frames: list[np.ndarray]) -> int:
    assert len(frames) == 1
    return round(float(frames[0].mean()))


def test_folder_replays_in_natural_order_and_loops(tmp_path: Path) -> None:
    """img2 comes before img10; the folder starts again at the end."""
    folder = _folder(tmp_path, ["img1.png", "img2.png", "img10.png"])
    src = open_source(str(folder))
    assert isinstance(src, ImageFolderSource)
    src.open()
    order = [_brightness(src.read_burst(3, 0.0)) for _ in range(4)]
    assert order[:3] == sorted(order[:3]) and order[3] == order[0]
    assert src.last_path is not None and src.last_path.name == "img1.png"


def test_folder_without_loop_ends(tmp_path: Path) -> None:
    """loop = false: EndOfSource after the last image."""
    src = ImageFolderSource(_folder(tmp_path, ["a.png", "b.png"]), loop=False)
    src.read_burst(1, 0)
    src.read_burst(1, 0)
    with pytest.raises(EndOfSource):
        src.read_burst(1, 0)


def test_folder_start_offset(tmp_path: Path) -> None:
    """start skips images, so bins sharing a folder differ."""
    folder = _folder(tmp_path, ["a.png", "b.png", "c.png"])
    a = ImageFolderSource(folder)
    b = ImageFolderSource(folder, start=2)
    a.open()
    b.open()
    assert _brightness(b.read_burst(1, 0)) > _brightness(a.read_burst(1, 0))


def test_empty_folder_and_undecodable_image(tmp_path: Path) -> None:
    """No images, or an image that does not decode: CameraError naming it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CameraError, match="holds no images"):
        ImageFolderSource(empty).open()
    (empty / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(CameraError, match="cannot decode image"):
        ImageFolderSource(empty).read_burst(1, 0)


def test_video_file_bursts_and_loops(tmp_path: Path) -> None:
    """A video file gives consecutive frames per burst and restarts at its end."""
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for i in range(4):
        writer.write(scene(60 + 40 * i, seed=i))
    writer.release()
    src = open_source(str(path))
    assert isinstance(src, VideoSource) and not src.live
    first = src.read_burst(3, 0.0)
    second = src.read_burst(2, 0.0)
    means = [round(float(f.mean())) for f in first + second]
    assert means[0] < means[1] < means[2] < means[3]
    assert abs(means[4] - means[0]) < 5  # looped back to the first frame
    src.close()


def test_unopenable_camera(tmp_path: Path) -> None:
    """A missing video file or camera raises CameraError, never hangs."""
    with pytest.raises(CameraError, match="cannot open"):
        VideoSource(str(tmp_path / "missing.mp4")).read_burst(1, 0)
