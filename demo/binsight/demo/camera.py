"""A demo camera: however often it captures, it sees the frame of its clock's time.

Each bin's rendered frames are its fill, one frame per :data:`~binsight.demo.FRAME_STEP_S` (20
minutes) of filling. A camera that read only when the next frame is due would read every 20 minutes
once the demo runs in real time, and a canary judged on three readings would take an hour. So the
frame a capture shows is chosen by the time on the camera's clock, not by how many captures came
before: the backfill's accelerated clock passes a frame per capture, the live cameras capture every
few seconds of real time and see the same frame until the next is due. The fill follows the one demo
clock and no reading is ever in the server's future.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from binsight.device.clock import Clock
from binsight.device.sources import IMAGE_SUFFIXES, CameraError, Frame

__all__ = ["TimedFrames"]


class TimedFrames:
    """Frame ``k`` of ``folder`` (in name order) from ``start_ms + k * step_s`` on, by ``clock``.

    A :class:`~binsight.device.sources.FrameSource`: a still image per capture, no burst; the folder
    loops when the clock passes its last frame. ``last_path`` is the image the last capture showed.
    """

    live = False
    frame_time_ms: int | None = None  # readings are stamped by the agent's clock, as live ones are

    def __init__(self, folder: Path, start_ms: int, step_s: float, clock: Clock) -> None:
        if step_s <= 0:
            raise ValueError(f"step_s must be > 0, got {step_s}")
        self.folder, self.start_ms = Path(folder), start_ms
        self.step_ms = step_s * 1000.0
        self.clock = clock
        self._files: list[Path] = []
        self.last_path: Path | None = None

    def open(self) -> None:
        self._files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self._files:
            raise CameraError(f"image folder {self.folder} holds no images")

    def index(self) -> int:
        """The frame the clock is at now (before the folder loops)."""
        return int(max(0, self.clock.now_ms() - self.start_ms) // self.step_ms)

    def read_burst(self, n: int, gap_s: float) -> list[Frame]:
        if not self._files:
            self.open()
        path = self._files[self.index() % len(self._files)]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise CameraError(f"cannot decode image {path}")
        self.last_path = path
        return [np.ascontiguousarray(frame, dtype=np.uint8)]

    def close(self) -> None:
        pass
