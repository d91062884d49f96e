"""A synthetic lid-camera set: what a camera in a container's lid sees, with known fill levels.

The renderer is numpy + OpenCV only (no torch, no scikit-learn), so the device simulator and the
demo can use it with the ``device`` extra alone.

What one frame models
---------------------
* Perspective walls: the rim fills the frame, the walls recede towards a vanishing point; a
  container ``depth`` (relative to the lens-to-rim distance) sets how small the floor looks.
* The waste surface sits at ``(1 - fill) * depth`` below the rim. Its outline and the items on it
  shrink with distance as ``1 / (1 + z)``, so items look larger as the surface nears the lens.
* A flash beside the lens: brightness falls off as ``scale ** falloff`` (inverse-square-like),
  plus a little ambient light leaking in, a vignette and a colour cast.
* Per bin (a deterministic function of ``seed`` and ``bin_index``): container depth, wall colour,
  rib count, camera tilt and offset, flash fall-off, ambient light and colour cast.
* Per frame: the items (bags, boxes, bottles, paper), exposure jitter, sensor noise and a JPEG
  round trip.

These images are synthetic: they exercise the pipeline and give a reproducible benchmark, they
are not a substitute for labelled photos from real containers.
"""

from __future__ import annotations

import csv
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from binsight.errors import DataError

__all__ = ["DEFAULT_SIZE", "BinLook", "bin_id_for", "bin_look", "generate", "render_frame"]

logger = logging.getLogger(__name__)

#: Default frame size (height, width): a 4:3 lid camera.
DEFAULT_SIZE = (240, 320)

# Item colours (BGR, 0..1): black/white/blue bags, cardboard, paper, green glass, food waste.
_ITEM_COLOURS = np.array(
    [
        [0.08, 0.08, 0.09],
        [0.85, 0.86, 0.84],
        [0.60, 0.35, 0.15],
        [0.30, 0.52, 0.70],
        [0.90, 0.90, 0.92],
        [0.20, 0.45, 0.20],
        [0.25, 0.35, 0.45],
        [0.15, 0.20, 0.55],
        [0.55, 0.60, 0.25],
    ],
    dtype=np.float32,
)
_WALL_COLOURS = np.array(
    [
        [0.35, 0.36, 0.36],  # grey plastic
        [0.20, 0.40, 0.22],  # green
        [0.45, 0.30, 0.15],  # blue
        [0.12, 0.12, 0.13],  # black
        [0.15, 0.45, 0.60],  # brown/orange
        [0.55, 0.55, 0.50],  # galvanised steel
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class BinLook:
    """The fixed appearance of one container and its camera."""

    depth: float  # container depth / lens-to-rim distance
    rim: float  # half the rim's apparent size, as a fraction of the frame (camera mount height)
    wall: tuple[float, float, float]  # BGR 0..1
    floor: tuple[float, float, float]
    ribs: int
    tilt_deg: float
    vp: tuple[float, float]  # vanishing point offset, fraction of (width, height)
    falloff: float  # flash fall-off exponent
    flash: float
    ambient: float
    cast: tuple[float, float, float]  # per-channel gain
    side_shade: tuple[float, float, float, float]  # top, right, bottom, left wall brightness


def bin_id_for(bin_index: int) -> str:
    """The bin id the synthetic set uses for ``bin_index``: ``bin-0001`` for 0."""
    return f"bin-{bin_index + 1:04d}"


def bin_look(bin_index: int, seed: int) -> BinLook:
    """The appearance of bin ``bin_index``: a deterministic function of ``(seed, bin_index)``."""
    rng = np.random.default_rng([seed, bin_index, 0xB1])
    wall = _WALL_COLOURS[rng.integers(len(_WALL_COLOURS))] * rng.uniform(0.8, 1.2, 3)
    floor = wall * rng.uniform(0.5, 0.8)
    shades = rng.uniform(0.55, 1.0, 4)
    return BinLook(
        depth=float(rng.uniform(2.35, 2.65)),
        rim=float(rng.uniform(0.545, 0.595)),
        wall=_triple(np.clip(wall, 0.02, 1.0)),
        floor=_triple(np.clip(floor, 0.02, 1.0)),
        ribs=int(rng.integers(0, 9)),
        tilt_deg=float(rng.uniform(-8.0, 8.0)),
        vp=(float(rng.uniform(-0.08, 0.08)), float(rng.uniform(-0.08, 0.08))),
        falloff=float(rng.uniform(0.8, 1.4)),
        flash=float(rng.uniform(0.85, 1.15)),
        ambient=float(rng.uniform(0.0, 0.08)),
        cast=_triple(rng.uniform(0.85, 1.15, 3)),
        side_shade=(float(shades[0]), float(shades[1]), float(shades[2]), float(shades[3])),
    )


def _triple(a: np.ndarray) -> tuple[float, float, float]:
    return float(a[0]), float(a[1]), float(a[2])


def _quad(look: BinLook, size: tuple[int, int], scale: float) -> np.ndarray:
    """Corners (tl, tr, br, bl) of the container's cross-section at apparent ``scale`` (1 = rim)."""
    h, w = size
    c = np.array([w / 2, h / 2], dtype=np.float64)
    vp = c + np.array([look.vp[0] * w, look.vp[1] * h])
    # The rim overshoots the frame a little: the camera sits under the lid, inside the rim.
    half = np.array([w * look.rim, h * (look.rim + 0.02)])
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) * half
    t = np.deg2rad(look.tilt_deg)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    rim = corners @ rot.T + c
    return np.asarray(vp + (rim - vp) * scale)


def _bilinear(quad: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Map points ``uv`` in [0, 1]^2 to the quad (tl, tr, br, bl)."""
    u, v = uv[:, :1], uv[:, 1:]
    top = quad[0] + (quad[1] - quad[0]) * u
    bottom = quad[3] + (quad[2] - quad[3]) * u
    return np.asarray(top + (bottom - top) * v)


def _draw_item(
    img: np.ndarray, rng: np.random.Generator, centre: np.ndarray, px: float, colour: np.ndarray
) -> None:
    """One piece of waste of apparent size ``px`` pixels (light drawn later)."""
    kind = rng.integers(4)
    col = tuple(float(x) for x in colour)
    edge = tuple(float(x) * 0.55 for x in colour)
    cx, cy = float(centre[0]), float(centre[1])
    angle = float(rng.uniform(0, 180))
    if kind == 0:  # bag: a big soft ellipse with a highlight
        axes = (max(1, int(px * rng.uniform(0.5, 0.9))), max(1, int(px * rng.uniform(0.35, 0.7))))
        cv2.ellipse(img, (int(cx), int(cy)), axes, angle, 0, 360, col, -1, cv2.LINE_AA)
        cv2.ellipse(img, (int(cx), int(cy)), axes, angle, 0, 360, edge, max(1, int(px * 0.06)), cv2.LINE_AA)
        hl = tuple(min(1.0, float(x) * 1.5 + 0.15) for x in colour)
        hx, hy = int(cx - px * 0.2), int(cy - px * 0.15)
        cv2.ellipse(img, (hx, hy), (max(1, int(px * 0.15)), max(1, int(px * 0.07))), angle, 0, 360, hl, -1)
    elif kind == 1:  # box: rotated rectangle with an edge
        wh = (px * rng.uniform(0.6, 1.2), px * rng.uniform(0.4, 0.9))
        box = cv2.boxPoints(((cx, cy), wh, angle)).astype(np.int32)
        cv2.fillConvexPoly(img, box, col, cv2.LINE_AA)
        cv2.polylines(img, [box], True, edge, max(1, int(px * 0.05)), cv2.LINE_AA)
    elif kind == 2:  # bottle: a long thin capsule
        length, width = px * rng.uniform(0.6, 1.0), max(1, int(px * rng.uniform(0.12, 0.22)))
        d = np.array([np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))]) * length / 2
        p1 = (int(cx - d[0]), int(cy - d[1]))
        p2 = (int(cx + d[0]), int(cy + d[1]))
        cv2.line(img, p1, p2, col, width * 2, cv2.LINE_AA)
        cv2.line(img, p1, p2, tuple(min(1.0, float(x) * 1.6 + 0.2) for x in colour), max(1, width // 3))
    else:  # crumpled paper / food: an irregular polygon
        n = int(rng.integers(5, 9))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = px * rng.uniform(0.25, 0.55, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1).astype(np.int32)
        cv2.fillPoly(img, [pts], col, cv2.LINE_AA)


def render_frame(
    bin_index: int,
    fill: float,
    seed: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    *,
    frame: int | None = None,
) -> np.ndarray:
    """Render what the lid camera of bin ``bin_index`` sees at ``fill``.

    Parameters
    ----------
    bin_index
        Which container; with ``seed`` it fixes the container's and camera's look.
    fill
        Fraction of the container's depth that is filled, 0..1.
    seed
        Seed of the synthetic world.
    size
        ``(height, width)`` of the frame.
    frame
        Selects the waste items and noise of this frame; by default they follow from
        ``(seed, bin_index, fill)``, so the same call returns the same image.

    Returns
    -------
    numpy.ndarray
        ``uint8`` BGR image of shape ``(height, width, 3)``, as OpenCV would return it.
    """
    if not 0.0 <= fill <= 1.0 or not np.isfinite(fill):
        raise ValueError(f"fill must be within 0..1, got {fill!r}")
    h, w = size
    if h < 32 or w < 32:
        raise ValueError(f"frame size must be at least 32x32, got {size!r}")
    look = bin_look(bin_index, seed)
    frame_key = frame if frame is not None else round(fill * 1_000_000)
    rng = np.random.default_rng([seed, bin_index, frame_key, 0xF7 if frame is None else 0xF8])

    img = np.zeros((h, w, 3), np.float32)
    light = np.zeros((h, w), np.float32)  # the scale (1 / (1 + depth)) of what each pixel shows
    z_surface = (1.0 - fill) * look.depth
    _paint_walls(img, light, look, size, z_surface)
    _paint_surface(img, light, look, 1.0 / (1.0 + z_surface), fill=fill, rng=rng)
    return _expose(img, light, look, rng)


def _paint_walls(
    img: np.ndarray, light: np.ndarray, look: BinLook, size: tuple[int, int], z_surface: float
) -> None:
    """The container's walls from the rim down to depth ``z_surface``, with their ribs."""
    # Walls, painted as rings from the rim down to the surface; each ring lit for its depth.
    steps = 28
    zs = np.linspace(0.0, z_surface, steps + 1)
    for k in range(steps):
        q0 = _quad(look, size, 1.0 / (1.0 + zs[k]))
        q1 = _quad(look, size, 1.0 / (1.0 + zs[k + 1]))
        s_mid = 1.0 / (1.0 + 0.5 * (zs[k] + zs[k + 1]))
        for side in range(4):
            a, b = side, (side + 1) % 4
            poly = np.array([q0[a], q0[b], q1[b], q1[a]]).astype(np.int32)
            shade = look.side_shade[side]
            cv2.fillConvexPoly(img, poly, tuple(c * shade for c in look.wall))
            cv2.fillConvexPoly(light, poly, float(s_mid))
    # Ribs: vertical grooves on the walls help the eye (and the model) read depth.
    s_surface = 1.0 / (1.0 + z_surface)
    rib_u = np.linspace(0.0, 1.0, look.ribs + 2)[1:-1] if look.ribs else np.empty(0)
    for u in rib_u:
        for side in range(4):
            a, b = side, (side + 1) % 4
            top = _quad(look, size, 1.0)
            bot = _quad(look, size, s_surface)
            p_top = top[a] + (top[b] - top[a]) * u
            p_bot = bot[a] + (bot[b] - bot[a]) * u
            dark = tuple(c * 0.6 for c in look.wall)
            cv2.line(img, tuple(p_top.astype(int)), tuple(p_bot.astype(int)), dark, 2, cv2.LINE_AA)


def _paint_surface(
    img: np.ndarray,
    light: np.ndarray,
    look: BinLook,
    s_surface: float,
    *,
    fill: float,
    rng: np.random.Generator,
) -> None:
    """The surface at scale ``s_surface``: the floor when empty, a layer of waste items otherwise."""
    h, w = size = light.shape
    surf = _quad(look, size, s_surface)
    surf_poly = surf.astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, surf_poly, 1)
    surf_width = float(np.linalg.norm(surf[1] - surf[0]))
    # Items may spill a little over the surface's edge (a heap is not flat).
    grown = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(surf_width * 0.02)))
    inside = np.asarray(grown).astype(bool)
    base = (
        np.array(look.floor, np.float32) if fill < 0.03 else _ITEM_COLOURS[rng.integers(len(_ITEM_COLOURS))]
    )
    layer = np.empty_like(img)
    layer[:] = base * 0.7
    n_items = int(rng.integers(0, 4)) if fill < 0.03 else int(rng.integers(25, 45))
    uv = rng.uniform(-0.05, 1.05, (n_items, 2))
    centres = _bilinear(surf, uv)
    for centre in centres:
        px = surf_width * float(rng.uniform(0.08, 0.22))
        colour = _ITEM_COLOURS[rng.integers(len(_ITEM_COLOURS))] * rng.uniform(0.8, 1.15)
        _draw_item(layer, rng, centre, px, np.clip(colour, 0.0, 1.0))
    img[inside] = layer[inside]
    light[inside] = s_surface


def _expose(img: np.ndarray, light: np.ndarray, look: BinLook, rng: np.random.Generator) -> np.ndarray:
    """The camera: flash fall-off, vignette, ambient leak, colour cast, exposure, sensor noise, JPEG."""
    h, w = light.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    vignette = 1.0 - 0.25 * r2
    exposure = float(rng.uniform(0.9, 1.1))
    gain = look.flash * exposure * np.power(np.maximum(light, 1e-3), look.falloff) * vignette
    out = img * (gain + look.ambient)[..., None] * 1.6 * np.array(look.cast, np.float32)
    out += rng.normal(0.0, float(rng.uniform(0.005, 0.02)), out.shape).astype(np.float32)
    out8 = np.clip(out * 255.0, 0, 255).astype(np.uint8)
    quality = int(rng.integers(55, 92))
    ok, enc = cv2.imencode(".jpg", out8, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a plain uint8 image
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(enc, cv2.IMREAD_COLOR)
    return np.asarray(decoded, dtype=np.uint8)


def generate(
    out_dir: str | Path,
    bins: int,
    per_bin: int,
    seed: int,
    *,
    size: tuple[int, int] = DEFAULT_SIZE,
    start: dt.datetime | None = None,
) -> Path:
    """Write a labelled synthetic set: ``images/<bin>/<n>.jpg`` and ``labels.csv``.

    Fill levels of each bin are spread evenly over 0..1 (jittered) and ordered into fill
    cycles, one capture every six hours, so the set also looks like a time series.

    Parameters
    ----------
    out_dir
        Folder to create (it may exist, but must not already hold a ``labels.csv``).
    bins, per_bin
        Number of containers and images per container.
    seed
        Seed; the same arguments give byte-identical images.

    Returns
    -------
    pathlib.Path
        The ``labels.csv`` written.
    """
    if bins < 1 or per_bin < 1:
        raise DataError(f"need at least one bin and one image per bin, got bins={bins} per_bin={per_bin}")
    out = Path(out_dir)
    labels = out / "labels.csv"
    if labels.exists():
        raise DataError(f"{labels} already exists; choose an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    start = start or dt.datetime(2026, 1, 5, 6, 0, tzinfo=dt.UTC)
    rows: list[tuple[str, str, str, str]] = []
    for b in range(bins):
        rng = np.random.default_rng([seed, b, 0x1A])
        fills = np.clip((np.arange(per_bin) + rng.uniform(0, 1, per_bin)) / per_bin, 0.0, 1.0)
        rng.shuffle(fills)
        cycles = max(1, per_bin // 8)
        fills = np.concatenate([np.sort(part) for part in np.array_split(fills, cycles)])
        bin_id = bin_id_for(b)
        (out / "images" / bin_id).mkdir(parents=True, exist_ok=True)
        for k, fill in enumerate(fills):
            fill_r = round(float(fill), 4)
            img = render_frame(b, fill_r, seed, size, frame=k)
            rel = f"images/{bin_id}/{k:05d}.jpg"
            cv2.imwrite(str(out / rel), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            ts = start + dt.timedelta(hours=6 * k, minutes=b)
            rows.append((rel, f"{fill_r:.4f}", bin_id, ts.isoformat().replace("+00:00", "Z")))
    tmp = labels.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "fill", "bin_id", "captured_at"])
        writer.writerows(rows)
    tmp.replace(labels)
    logger.info("wrote %s images of %s bins to %s", len(rows), bins, out)
    return labels
