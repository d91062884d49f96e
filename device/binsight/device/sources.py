"""Frame sources, all through OpenCV: a camera index, a stream URL, a video file, an image folder.

A source hands out *bursts*: a live camera gives ``n`` frames ``gap_s`` apart (after dropping a few
while auto-exposure settles); a video file gives the next ``n`` frames; an image folder gives its
next image, once (a still image has no burst), replaying the folder in name order.
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from binsight.device.frametime import FrameTimeError, TimestampSource, frame_time_ms
from binsight.errors import BinsightError

__all__ = [
    "IMAGE_SUFFIXES",
    "CameraError",
    "EndOfSource",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "VideoSource",
    "open_source",
]

logger = logging.getLogger(__name__)

Frame = NDArray[np.uint8]
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


class CameraError(BinsightError):
    """The source cannot be opened or stopped giving frames."""


class EndOfSource(BinsightError):
    """A folder or file source reached its end and is not set to loop."""


class FrameSource(Protocol):
    """What the agent needs from a camera."""

    #: True for cameras and streams (frames keep coming), False for files and folders.
    live: bool
    #: When the last burst was taken (ms since the epoch), if the source knows better than the
    #: clock (replayed image folders with ``camera.timestamps``); None: the clock's time.
    frame_time_ms: int | None

    def open(self) -> None: ...

    def read_burst(self, n: int, gap_s: float) -> list[Frame]: ...

    def close(self) -> None: ...


def _natural_key(path: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class ImageFolderSource:
    """Replays the images of a folder in natural name order (``img2`` before ``img10``).

    The folder is listed again each time it is exhausted, so images added meanwhile are seen.
    ``start`` skips that many images first (so simulated bins sharing a folder differ).
    ``timestamps`` (:mod:`binsight.device.frametime`): where each image's capture time comes from,
    set as ``frame_time_ms`` after each read; names and EXIF times without an offset are in ``tz``.
    """

    live = False

    def __init__(
        self,
        folder: str | Path,
        loop: bool = True,
        start: int = 0,
        timestamps: TimestampSource = "clock",
        tz: tzinfo = UTC,
    ) -> None:
        self.folder = Path(folder)
        self.loop = loop
        self.timestamps: TimestampSource = timestamps
        self.tz = tz
        self._files: list[Path] = []
        self._pos = start
        self.last_path: Path | None = None
        self.frame_time_ms: int | None = None

    def check_times(self) -> None:
        """Read every image's capture time now (not ``clock``), so a bad one stops a back-test at
        its start, not hours into it.

        Raises
        ------
        FrameTimeError
            Naming the first image whose time cannot be read, and the expected form.
        """
        if self.timestamps == "clock":
            return
        for path in self._list():
            frame_time_ms(path, self.timestamps, self.tz)

    def _list(self) -> list[Path]:
        try:
            files = [p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        except OSError as exc:
            raise CameraError(f"image folder {self.folder}: {exc.strerror or exc}") from exc
        return sorted(files, key=_natural_key)

    def open(self) -> None:
        self._files = self._list()
        if not self._files:
            raise CameraError(f"image folder {self.folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self._pos %= len(self._files)

    def read_burst(self, n: int, gap_s: float) -> list[Frame]:
        if not self._files:
            self.open()
        if self._pos >= len(self._files):
            if not self.loop:
                raise EndOfSource(f"image folder {self.folder}: all {len(self._files)} images replayed")
            self._files = self._list()
            self._pos = 0
            if not self._files:
                raise CameraError(f"image folder {self.folder} holds no images any more")
        path = self._files[self._pos]
        self._pos += 1
        try:
            when = frame_time_ms(path, self.timestamps, self.tz)
        except FrameTimeError as exc:
            raise CameraError(str(exc)) from exc
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraError(f"cannot decode image {path}")
        self.last_path = path
        self.frame_time_ms = when
        return [np.ascontiguousarray(frame, dtype=np.uint8)]

    def close(self) -> None:
        pass


class VideoSource:
    """A camera index, a stream URL (RTSP/HTTP) or a video file, through ``cv2.VideoCapture``."""

    frame_time_ms: int | None = None  # frames are timed by the clock

    def __init__(
        self,
        spec: str,
        *,
        discard_frames: int = 5,
        keep_open: bool = False,
        loop: bool = True,
        width: int | None = None,
        height: int | None = None,
    ) -> None:
        self.spec = spec
        self.index: int | None = int(spec) if spec.isdigit() else None
        self.is_file = self.index is None and "://" not in spec
        self.live = not self.is_file
        self.discard_frames = discard_frames if self.live else 0
        # Files are read where they left off; a live camera is reopened per capture unless told
        # otherwise, which keeps a USB camera cool and avoids the stale frames a stream buffers.
        self.keep_open = keep_open or self.is_file
        self.loop = loop
        self.width = width
        self.height = height
        self._cap: cv2.VideoCapture | None = None

    def open(self) -> None:
        if self._cap is not None:
            return
        cap = cv2.VideoCapture(self.index if self.index is not None else self.spec)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"cannot open camera source {self.spec!r}")
        if self.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        if self.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap

    def _read(self) -> Frame:
        assert self._cap is not None
        ok, frame = self._cap.read()
        if ok and frame is not None:
            return np.ascontiguousarray(frame, dtype=np.uint8)
        if self.is_file:
            if not self.loop:
                raise EndOfSource(f"video file {self.spec} ended")
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
            if ok and frame is not None:
                return np.ascontiguousarray(frame, dtype=np.uint8)
        self.close()
        raise CameraError(f"camera source {self.spec!r} gave no frame")

    def read_burst(self, n: int, gap_s: float) -> list[Frame]:
        self.open()
        try:
            for _ in range(self.discard_frames):
                self._read()
            frames = []
            for i in range(n):
                if i and self.live and gap_s > 0:
                    time.sleep(gap_s)
                frames.append(self._read())
            return frames
        finally:
            if not self.keep_open:
                self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(
    spec: str,
    *,
    discard_frames: int = 5,
    keep_open: bool = False,
    loop: bool = True,
    width: int | None = None,
    height: int | None = None,
    start: int = 0,
    timestamps: TimestampSource = "clock",
    tz: tzinfo = UTC,
) -> FrameSource:
    """The source ``spec`` names: digits are a camera index, ``scheme://`` a stream, a folder an
    image folder, anything else a video file. Nothing is opened yet.

    Raises
    ------
    FrameTimeError
        ``timestamps`` other than ``clock`` for a source that is not an image folder.
    """
    if not spec.isdigit() and "://" not in spec and Path(spec).is_dir():
        return ImageFolderSource(spec, loop=loop, start=start, timestamps=timestamps, tz=tz)
    if timestamps != "clock":
        raise FrameTimeError(
            f"camera.timestamps = {timestamps!r} needs an image folder; {spec!r} is not one (use 'clock')"
        )
    return VideoSource(
        spec, discard_frames=discard_frames, keep_open=keep_open, loop=loop, width=width, height=height
    )
