"""``binsight train fit --from-server URL|DIR``: retrain on all human labels; compare with the active one.

The labelled set comes from

- a server URL: ``GET /api/labels/export`` (a zip in the labelled-set layout, docs/contracts.md) with the
  bearer token ``BINSIGHT_TOKEN`` (read through :mod:`binsight.secrets`); the active model from
  ``GET /api/models`` and ``GET /models/<version>.onnx``; sites from ``GET /api/bins``;
- a folder in that layout: one ``binsight server export-labels`` wrote also holds ``server.json`` (the
  active model's file beside it and the bins' sites); ``--active MODEL`` overrides its active model.

Training never reads the server's database: the server's tables are the server's (a database URL is
refused with the export-labels command to run instead).

The candidate is fitted with :func:`binsight.training.pipeline.fit_dataset` (features come from the
feature cache, so images seen by an earlier retrain are not run through the backbone again). The
candidate and the active model then run on the *same* held-out labels (whole bins held out), and
the report's ``comparison`` holds both, overall and per site: the server's promotion gate reads it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from binsight.errors import BinsightError, DataError
from binsight.heldout import paired_difference
from binsight.secrets import read_secret
from binsight.training import DEFAULT_INPUT_SIZE, DEFAULT_LATENCY_BUDGET_MS

if TYPE_CHECKING:
    from binsight.training.data import Dataset
    from binsight.training.retrain import Mode

__all__ = [
    "compare_models",
    "fetch_export",
    "fit_from_server",
    "read_export_context",
    "upload_model",
]

logger = logging.getLogger(__name__)


class ServerError(BinsightError):
    """The server refused or could not be reached; the message names the URL and the reason."""


# --------------------------------------------------------------------------- HTTP
def _request(
    url: str, token: str | None, data: bytes | None = None, headers: dict[str, str] | None = None
) -> bytes:
    req = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            body: bytes = resp.read()
            return body
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        with contextlib.suppress(ValueError, AttributeError):
            detail = str(json.loads(detail).get("detail", detail))
        raise ServerError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ServerError(f"{url}: {getattr(exc, 'reason', exc)}") from None


def _token(token: str | None) -> str:
    token = token or read_secret("token")
    if not token:
        raise ServerError(
            "no API token: set BINSIGHT_TOKEN (or BINSIGHT_TOKEN_FILE) to a labeller or admin token"
        )
    return token


def _safe_extract(data: bytes, dest: Path) -> None:
    """Unzip an export, refusing members that would land outside ``dest``."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ServerError(f"the label export is not a zip file: {exc}") from None
    root = dest.resolve()
    with zf:
        for name in zf.namelist():
            target = (dest / name).resolve()
            if not target.is_relative_to(root):
                raise ServerError(f"the label export holds an unsafe path {name!r}")
        zf.extractall(dest)


def fetch_export(base_url: str, token: str, dest: Path) -> Path:
    """Download ``GET /api/labels/export`` into ``dest`` (created); returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    url = base_url.rstrip("/") + "/api/labels/export?kind="
    try:  # fill and class labels (a class head beside fill)
        data = _request(url + "both", token)
    except ServerError as exc:  # a server from before class heads knows fill and label only
        if "HTTP 422" not in str(exc):
            raise
        data = _request(url + "fill", token)
    _safe_extract(data, dest)
    if not (dest / "labels.csv").is_file():
        raise ServerError("the label export has no labels.csv")
    return dest


def _fetch_active(base_url: str, token: str, dest: Path) -> Path | None:
    models = json.loads(_request(base_url.rstrip("/") + "/api/models", token))
    active = next((m for m in models if m.get("active")), None)
    if active is None:
        return None
    version = str(active["version"])
    path = dest / f"active-{version}.onnx"
    path.write_bytes(_request(f"{base_url.rstrip('/')}/models/{urllib.parse.quote(version)}.onnx", token))
    return path


def _fetch_sites(base_url: str, token: str) -> dict[str, str]:
    try:
        bins = json.loads(_request(base_url.rstrip("/") + "/api/bins", token))
    except ServerError as exc:
        logger.warning("sites unknown (%s): the per-site table has one row", exc)
        return {}
    return {str(b["id"]): str(b["site"]) for b in bins if b.get("site")}


def upload_model(base_url: str, token: str, model: Path, report: dict[str, Any]) -> dict[str, Any]:
    """``POST /api/models`` (multipart: ``file``, ``report``); needs an admin token."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{model.name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + model.read_bytes()
        + b"\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="report"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(report).encode()
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    body = _request(
        base_url.rstrip("/") + "/api/models",
        token,
        b"".join(parts),
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    result: dict[str, Any] = json.loads(body)
    return result


# --------------------------------------------------------------------------- export folders
SERVER_JSON = "server.json"
"""Beside labels.csv in a ``binsight server export-labels`` folder: the active model and the sites."""


def read_export_context(folder: Path) -> tuple[Path | None, dict[str, str]]:
    """The active model file and the bins' sites an export-labels folder names in ``server.json``.

    A plain labelled set (no ``server.json``) names neither: ``(None, {})``.
    """
    path = folder / SERVER_JSON
    if not path.is_file():
        return None, {}
    try:
        context = json.loads(path.read_text(encoding="utf-8"))
        sites = {str(b): str(site) for b, site in context.get("sites", {}).items()}
        active = context.get("active")
        name = str(active["file"]) if active else None
    except (ValueError, AttributeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an export-labels {SERVER_JSON} ({exc})") from None
    if name is not None and Path(name).name != name:
        raise DataError(f"{path}: the active model file {name!r} must be a name in {folder}, not a path")
    model = folder / name if name is not None else None
    if model is not None and not model.is_file():
        raise DataError(f"{path} names the active model file {model.name}, which is not in {folder}")
    return model, sites


NO_DATABASE = (
    "training does not read the server's database; on the server run "
    "`binsight server export-labels --config server.toml --out DIR` and give --from-server DIR"
)


def _is_database_url(source: str) -> bool:
    return source.startswith(("sqlite:", "postgresql:", "postgresql+", "postgres:"))


# --------------------------------------------------------------------------- comparison
def compare_models(
    candidate: Path,
    active: Path | None,
    data_dir: Path,
    test_bins: list[str],
    sites: dict[str, str],
    *,
    threads: int | None = None,
) -> dict[str, Any]:
    """Both models on the same held-out labels (the images of ``test_bins``), overall and per site,
    and (fill models) the paired difference of their errors with its 95% interval
    (:func:`binsight.heldout.paired_difference`, resampling whole bins).

    Returns
    -------
    dict
        ``{metric, lower_is_better, n, test_bins, expected_shift, candidate: {version, <metrics>,
        per_site}, active: {...} | None}``; ``expected_shift`` is the 90th percentile of
        ``|candidate - active|`` over those images: how far readings may move at the switch;
        ``difference`` is ``{n, bins, mean_diff, ci, level, resampled}`` (candidate minus active MAE).
    """
    from binsight.training.data import load_dataset
    from binsight.training.evaluate import metrics_for, predict_dataset
    from binsight.training.modelfile import read_info
    from binsight.training.runtime import session

    whole = load_dataset(data_dir, skip_bad=True)
    # Fill and class labels: the fill comparison on the fill part, the class heads' on the class part.
    ds, class_part = whole.head_parts() if whole.has_class_labels else (whole, None)
    held = set(test_bins)
    idx = [i for i, s in enumerate(ds.samples) if s.bin_id in held]
    if not idx:
        raise DataError(f"no labelled images of the held-out bins {sorted(held)} in {data_dir}")
    by_site: dict[str, list[int]] = defaultdict(list)
    for k, i in enumerate(idx):
        by_site[sites.get(ds.samples[i].bin_id or "", "(none)")].append(k)

    def run(path: Path) -> tuple[dict[str, Any], np.ndarray]:
        sess = session(path, threads)
        info = read_info(sess, path)
        out, unreadable = predict_dataset(sess, info, ds, idx)
        if unreadable:
            raise DataError(f"{ds.samples[unreadable[0]].where()}: cannot decode the image")
        side: dict[str, Any] = {"version": info.metadata.get("binsight.model_version"), "path": str(path)}
        side.update(metrics_for(info, ds, idx, out))
        side["per_site"] = {
            site: _site_metrics(metrics_for(info, ds, [idx[k] for k in ks], out[ks]))
            for site, ks in sorted(by_site.items())
        }
        return side, out

    cand, cand_out = run(candidate)
    task = ds.task
    metric = "mae" if task == "regression" else "accuracy"
    result: dict[str, Any] = {
        "metric": metric,
        "lower_is_better": task == "regression",
        "n": len(idx),
        "test_bins": sorted(held),
        "candidate": cand,
        "active": None,
        "expected_shift": None,
    }
    if active is not None:
        act, act_out = run(active)
        result["active"] = act
        if task == "regression":
            result["expected_shift"] = float(np.percentile(np.abs(cand_out - act_out), 90))
            y = np.array([ds.samples[i].fill for i in idx], dtype=np.float64)
            result["difference"] = paired_difference(
                np.abs(cand_out.reshape(-1) - y).tolist(),
                np.abs(act_out.reshape(-1) - y).tolist(),
                [ds.samples[i].bin_id or "" for i in idx],
            )
    if class_part is not None:
        result["class_comparison"] = compare_class_heads(candidate, active, class_part, held, threads=threads)
    return result


def compare_class_heads(
    candidate: Path, active: Path | None, ds: Dataset, held: set[str], *, threads: int | None = None
) -> dict[str, Any] | None:
    """The candidate's and the active model's class heads on the held-out bins' class labels.

    Returns
    -------
    dict or None
        None when neither model has a class head for these classes. Else ``{metric: "accuracy",
        lower_is_better: false, n, classes, candidate: {version, accuracy, ...} | None, active: {...}
        | None, active_note, difference}``: ``candidate`` is None when only the active model has a
        class head; ``active`` is None (and ``active_note`` says why) when the active model has no
        class head for these classes; ``difference`` is the paired difference of the two models'
        per-image errors (0 right, 1 wrong: candidate minus active error rate) with its 95% interval,
        resampling whole bins.
    """
    from binsight.modelfile import CLASS_OUTPUT
    from binsight.training.evaluate import class_metrics_for, predict_dataset
    from binsight.training.modelfile import read_info
    from binsight.training.runtime import session

    idx = [i for i, s in enumerate(ds.samples) if s.bin_id in held]

    def run(path: Path) -> tuple[dict[str, Any], list[float]] | None:
        sess = session(path, threads)
        info = read_info(sess, path)
        if not info.classes or not all(ds.samples[i].label in info.classes for i in idx):
            return None
        output = CLASS_OUTPUT if info.has_class_head else info.output
        probs, unreadable = predict_dataset(sess, info, ds, idx, output=output)
        if unreadable:
            raise DataError(f"{ds.samples[unreadable[0]].where()}: cannot decode the image")
        side: dict[str, Any] = {"version": info.model_version, "path": str(path)}
        side.update(class_metrics_for(info, ds, idx, probs))
        picked = [info.classes[int(k)] for k in probs.argmax(axis=1)]
        return side, [float(p != ds.samples[i].label) for p, i in zip(picked, idx, strict=True)]

    if not idx:
        return None
    cand = run(candidate)
    act = run(active) if active is not None else None
    if cand is None and act is None:
        return None
    result: dict[str, Any] = {
        "metric": "accuracy",
        "lower_is_better": False,
        "n": len(idx),
        "classes": sorted({ds.samples[i].label or "" for i in idx}),
        "candidate": None if cand is None else cand[0],
        "active": None if act is None else act[0],
        "active_note": None,
    }
    if act is None:
        result["active_note"] = (
            "no active model" if active is None else "the active model has no class head for these classes"
        )
    if cand is not None and act is not None:
        result["difference"] = paired_difference(cand[1], act[1], [ds.samples[i].bin_id or "" for i in idx])
    return result


# --------------------------------------------------------------------------- the command
def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


@dataclass(frozen=True)
class _Sources:
    """Where a retrain reads from: the labelled set's folder, the active model file, the bins' sites."""

    data_dir: Path
    active: Path | None
    sites: dict[str, str]


def _gather(source: str, work_dir: Path, token: str | None, active: Path | None) -> _Sources:
    """The labelled set, the active model and the sites, from a server URL or an exported folder.

    ``active`` (``--active``) wins over the one the server or the folder names.
    """
    if _is_url(source):
        tok = _token(token)
        data_dir = fetch_export(source, tok, work_dir / "labels")
        return _Sources(data_dir, active or _fetch_active(source, tok, work_dir), _fetch_sites(source, tok))
    if _is_database_url(source):
        raise DataError(f"{source}: {NO_DATABASE}")
    data_dir = Path(source)
    if not (data_dir / "labels.csv").is_file():
        raise DataError(f"{source}: neither a server URL nor a folder with labels.csv")
    folder_active, sites = read_export_context(data_dir)
    return _Sources(data_dir, active or folder_active, sites)


def _load_by_bins(data_dir: Path) -> Dataset:
    """The labelled set, refused unless it has the two or more bins a held-out split by bin needs."""
    from binsight.training.data import load_dataset

    ds = load_dataset(data_dir, skip_bad=True)
    if not ds.has_bins:
        raise DataError(f"{data_dir}: labels without bin_id: the held-out split must keep bins apart")
    if len({s.bin_id for s in ds.samples}) < 2:
        raise DataError(f"{data_dir}: labels from one bin only: need two bins to hold one out")
    return ds


#: Fewer held-out labels than this at a site: no r2 for it (the variance of 2-4 fills says nothing).
MIN_R2_SAMPLES = 5


def _site_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """A site's metrics; r2 left out (None, with the reason) below :data:`MIN_R2_SAMPLES` labels."""
    n = int(metrics.get("n") or 0)
    if "r2" in metrics and n < MIN_R2_SAMPLES:
        metrics = {**metrics, "r2": None, "r2_note": f"{n} held-out labels: under {MIN_R2_SAMPLES}, no r2"}
    return metrics


def fit_from_server(
    source: str,
    out: Path,
    *,
    token: str | None = None,
    active: Path | None = None,
    work_dir: Path | None = None,
    backbone: Any = "efficientnet_lite0",
    int8: bool = False,
    report_path: Path | None = None,
    cache_dir: Path | None = None,
    upload: bool = False,
    progress: bool = True,
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE,
    latency_budget_ms: float = DEFAULT_LATENCY_BUDGET_MS,
    retrain: Mode = "auto",
) -> dict[str, Any]:
    """Fetch every human label, fit a candidate on the training bins' labels, compare it with the active
    model on the held-out bins' labels; optionally upload it.

    Parameters
    ----------
    source
        A server URL or a folder (``binsight server export-labels`` writes one; any labelled set with
        ``bin_id`` will do). A database URL is refused with the command to run instead.

    Returns
    -------
    dict
        The training report with ``source``, ``comparison`` and (with ``upload``) ``uploaded``.
    """
    from binsight.training.pipeline import fit_dataset, model_file

    if upload and not _is_url(source):
        raise DataError("--upload needs a server URL as --from-server")
    with contextlib.ExitStack() as cleanup:
        if work_dir is None:
            work_dir = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="binsight-retrain-")))
        got = _gather(source, work_dir, token, active)
        ds = _load_by_bins(got.data_dir)
        report = fit_dataset(
            ds,
            Path(out),
            backbone=backbone,
            int8=int8,
            report_path=report_path,  # the JSON (rewritten below, with the comparison) and its PNG
            skip_bad=True,
            cache_dir=cache_dir,
            progress=progress,
            input_size=input_size,
            latency_budget_ms=latency_budget_ms,
            retrain=retrain,
        )
        model_path = Path(model_file(report))
        report["source"] = {
            "from": source.rstrip("/") if _is_url(source) else source,
            "labels": len(ds.samples),
        }
        report["comparison"] = compare_models(
            model_path, got.active, got.data_dir, report["split"]["test_bins"], got.sites
        )
        if report_path is not None:
            staged = report_path.with_name(f".{report_path.name}.tmp")
            staged.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
            staged.replace(report_path)
        if upload:
            report["uploaded"] = upload_model(source, _token(token), model_path, report)
        return report


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    from binsight.training.pipeline import model_file

    comp = report["comparison"]
    metric = comp["metric"]

    def side(x: dict[str, Any] | None) -> dict[str, Any] | None:
        if x is None:
            return None
        return {
            "version": x["version"],
            metric: x[metric],
            "per_site": {k: v[metric] for k, v in x["per_site"].items()},
        }

    return {
        "model": model_file(report),
        "labels": report["source"]["labels"],
        "fitted_on": report["split"]["train"],  # the training bins' labels; the rest are held out
        "held_out": {"n": comp["n"], "bins": comp["test_bins"], "difference": comp.get("difference")},
        "candidate": side(comp["candidate"]),
        "active": side(comp["active"]),
        "uploaded": (report.get("uploaded") or {}).get("version"),
        "class_heads": _class_summary(comp.get("class_comparison")),
    }


def _class_summary(comp: dict[str, Any] | None) -> dict[str, Any] | None:
    """The class heads' held-out accuracies (and their paired difference), when the candidate has one."""
    if comp is None:
        return None
    act, cand = comp["active"], comp["candidate"]
    return {
        "n": comp["n"],
        "candidate": None if cand is None else cand["accuracy"],
        "active": None if act is None else act["accuracy"],
        "active_note": comp.get("active_note"),
        "difference": comp.get("difference"),
    }


def command(args: argparse.Namespace) -> int:
    """``binsight train fit --from-server SOURCE --out MODEL.onnx``: prints both models' scores per site."""
    if args.data is not None:
        raise DataError("give either DATA or --from-server, not both")
    if args.models_dir is not None:
        raise DataError(f"--models-dir went with the database mode: {NO_DATABASE}")
    report = fit_from_server(
        args.from_server,
        Path(args.out),
        active=Path(args.active) if args.active else None,
        backbone=args.backbone,
        int8=args.int8,
        report_path=Path(args.report) if args.report else None,
        upload=args.upload,
        input_size=args.input_size,
        latency_budget_ms=args.latency_budget_ms,
        retrain=args.retrain,
    )
    json.dump(_summary(report), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
