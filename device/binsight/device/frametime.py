"""When an image was taken, for replayed image folders: its file's mtime, a time in its name, or EXIF.

Back-testing replays old images; their readings must carry the time the image was taken, not the
time of the replay. ``camera.timestamps`` chooses where that time comes from:

- ``clock``: the agent's clock at capture (live cameras, demos);
- ``mtime``: the file's modification time;
- ``filename``: a date and time in the file name, ``YYYYMMDD?HHMMSS`` with optional separators
  (``IMG_20240131_142501.jpg``, ``2024-01-31T14-25-01.png``, ``cam1 2024-01-31 14.25.01.jpg``),
  else a Unix time of 10 (seconds) or 13 (milliseconds) digits (``1706711101.jpg``);
- ``exif``: the JPEG's EXIF ``DateTimeOriginal`` (else ``DateTime``), with its
  ``OffsetTimeOriginal`` when the camera wrote one.

Names and EXIF times without a UTC offset are read in ``camera.timestamps_tz`` (default UTC).
"""

from __future__ import annotations

import os
import re
import struct
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, Literal

from binsight.errors import BinsightError

__all__ = ["FrameTimeError", "TimestampSource", "exif_time", "frame_time_ms", "name_time"]

TimestampSource = Literal["clock", "mtime", "filename", "exif"]

_NAME_DATETIME = re.compile(
    r"(?<!\d)(\d{4})[-_.]?(\d{2})[-_.]?(\d{2})[T_ -]?(\d{2})[-_.:h]?(\d{2})[-_.:m]?(\d{2})(?!\d)"
)
_NAME_EPOCH = re.compile(r"(?<!\d)(\d{13}|\d{10})(?!\d)")
_NAME_FORMS = (
    "a date and time YYYYMMDD?HHMMSS (separators allowed: IMG_20240131_142501, 2024-01-31T14-25-01) "
    "or a Unix time of 10 or 13 digits"
)
_EXIF_DATETIME = re.compile(r"(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")


class FrameTimeError(BinsightError):
    """An image's capture time cannot be read the configured way."""


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _datetime(parts: tuple[str | Any, ...], tz: tzinfo) -> datetime:
    year, month, day, hour, minute, second = (int(p) for p in parts)
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def name_time(name: str, tz: tzinfo = UTC) -> int:
    """The time (ms since the epoch) in a file name.

    Raises
    ------
    FrameTimeError
        The name holds no date and time of the accepted forms, or an impossible one.
    """
    stem = Path(name).stem
    m = _NAME_DATETIME.search(stem)
    if m is not None:
        try:
            dt = _datetime(m.groups(), tz)
        except ValueError as exc:
            bad = m.group(0)
            raise FrameTimeError(f"image {name!r}: {bad!r} is not a valid date and time: {exc}") from exc
        return _ms(dt)
    m = _NAME_EPOCH.search(stem)
    if m is not None:
        value = int(m.group(1))
        return value if len(m.group(1)) == 13 else value * 1000
    raise FrameTimeError(
        f"image {name!r}: no capture time in its name; camera.timestamps = 'filename' expects {_NAME_FORMS}"
    )


def _tiff_time(tiff: bytes) -> tuple[str, str | None] | None:
    """(DateTimeOriginal or DateTime, OffsetTimeOriginal or None) from an EXIF TIFF block."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return None
    end = "<" if tiff[:2] == b"II" else ">"

    def ifd(offset: int) -> dict[int, bytes]:
        """Tag -> raw value (ASCII strings and LONGs) of one IFD."""
        out: dict[int, bytes] = {}
        if offset <= 0 or offset + 2 > len(tiff):
            return out
        (n,) = struct.unpack_from(end + "H", tiff, offset)
        for k in range(n):
            pos = offset + 2 + 12 * k
            if pos + 12 > len(tiff):
                break
            tag, typ, count = struct.unpack_from(end + "HHI", tiff, pos)
            if typ == 2:  # ASCII
                start = pos + 8 if count <= 4 else struct.unpack_from(end + "I", tiff, pos + 8)[0]
                out[tag] = tiff[start : start + count].split(b"\0", 1)[0]
            elif typ == 4 and count == 1:  # LONG (the Exif IFD pointer)
                out[tag] = tiff[pos + 8 : pos + 12]
        return out

    (first,) = struct.unpack_from(end + "I", tiff, 4)
    ifd0 = ifd(first)
    exif: dict[int, bytes] = {}
    if 0x8769 in ifd0:
        exif = ifd(struct.unpack(end + "I", ifd0[0x8769])[0])
    raw = exif.get(0x9003) or ifd0.get(0x0132)  # DateTimeOriginal, else DateTime
    if not raw:
        return None
    offset = exif.get(0x9011)  # OffsetTimeOriginal
    return raw.decode("ascii", "replace"), offset.decode("ascii", "replace") if offset else None


def _jpeg_exif(data: bytes) -> tuple[str, str | None] | None:
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end: the metadata segments are before it
            return None
        (length,) = struct.unpack_from(">H", data, i + 2)
        segment = data[i + 4 : i + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\0\0":
            return _tiff_time(segment[6:])
        i += 2 + length
    return None


def exif_time(path: str | Path, tz: tzinfo = UTC) -> int:
    """The EXIF capture time (ms since the epoch) of a JPEG file.

    Raises
    ------
    FrameTimeError
        Not a JPEG with an EXIF DateTimeOriginal or DateTime, or an unreadable one.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(512 * 1024)  # EXIF is in the first 64 KiB segment(s)
    except OSError as exc:
        raise FrameTimeError(f"image {path}: {exc.strerror or exc}") from exc
    found = _jpeg_exif(head)
    if found is None:
        raise FrameTimeError(
            f"image {path}: no EXIF DateTimeOriginal or DateTime (camera.timestamps = 'exif')"
        )
    text, offset = found
    m = _EXIF_DATETIME.fullmatch(text.strip())
    if m is None:
        raise FrameTimeError(f"image {path}: EXIF date {text!r} is not 'YYYY:MM:DD HH:MM:SS'")
    zone: tzinfo = tz
    o = _EXIF_OFFSET.fullmatch(offset.strip()) if offset else None
    if o is not None:
        sign = -1 if o.group(1) == "-" else 1
        zone = timezone(sign * timedelta(hours=int(o.group(2)), minutes=int(o.group(3))))
    try:
        return _ms(_datetime(m.groups(), zone))
    except ValueError as exc:
        raise FrameTimeError(f"image {path}: EXIF date {text!r} is not a valid date: {exc}") from exc


def frame_time_ms(path: Path, how: TimestampSource, tz: tzinfo = UTC) -> int | None:
    """The capture time of the image at ``path`` the configured way; None for ``clock``."""
    if how == "clock":
        return None
    if how == "mtime":
        try:
            return os.stat(path).st_mtime_ns // 1_000_000
        except OSError as exc:
            raise FrameTimeError(f"image {path}: {exc.strerror or exc}") from exc
    if how == "filename":
        return name_time(path.name, tz)
    return exif_time(path, tz)
