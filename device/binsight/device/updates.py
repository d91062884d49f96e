"""Signed model updates: verify, refuse replays, download, check, swap atomically, roll back.

For each :class:`~binsight.protocol.ModelRelease` seen on ``<root>/<bin_id>/model``:

1. the Ed25519 signature over the release manifest is checked against the configured public
   key: no key, a bad or a foreign signature -> ``failed``, nothing is downloaded;
2. the release must be newer than every release this device accepted: its ``release_number``
   above the highest stored in the state DB (``accepted_release``); an unnumbered (v1) release
   only while no numbered one was ever accepted. A replayed or downgraded release -> ``failed``;
3. ``downloading``: the file is fetched over HTTP into ``MODEL.download``, never more than
   ``size`` bytes, and its sha256 and size compared with the release -> ``verified``;
4. it is loaded with ONNX Runtime (model-file contract, metadata version == release version) and
   run on the last captured frame: the output must be a sane fill;
5. the current file is kept as ``MODEL.prev`` (hard link, so ``MODEL`` always exists) and the new
   one renamed over ``MODEL``; the agent switches to it between two captures -> ``active``, and
   the release number becomes the highest accepted.

Any failure leaves the running model untouched, and every refusal reaches the server as a model
event naming its cause, once per distinct announcement and reason (and once per process start).
A refusal whose cause lies in the announcement itself (``failed``) is remembered, with its reason,
by the whole signed announcement's fingerprint, so its retained copy is not fetched again on every
restart (the remembered reason is reported again instead) while a differently signed or numbered
release of the same version is still judged on its own. A refusal whose cause can pass
(``retrying``: download error, no or unusable key, updates disabled, a full disk) is never
remembered: it is retried with backoff while the release stays current, and on the next
announcement or restart.

A state partition without room for the model and ``KEEP_FREE_BYTES`` more is such a download error:
nothing is written (the outbox keeps its room), the partial file of a download that filled the disk
is removed, and the release is tried again later; a full disk is logged once, not per retry.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from binsight.device.config import UpdatesConfig
from binsight.device.inference import FillModel, ModelError
from binsight.device.outbox import Outbox
from binsight.device.problems import DiskSpace, free_bytes, out_of_space
from binsight.device.schedule import Backoff
from binsight.device.sources import Frame
from binsight.errors import BinsightError
from binsight.modelfile import file_sha256
from binsight.protocol import ModelRelease

__all__ = ["UpdateError", "Updater", "announcement_id"]

logger = logging.getLogger(__name__)

Report = Callable[[str, str | None, str | None], None]  # (state, version, detail)

#: State DB settings (``Outbox.get_setting``): the highest release number accepted, the fingerprints
#: of announcements refused for good (newest last, the last few kept), the model version rolled
#: back after inference errors, and the one setting of agents before release numbers
#: (``<version>:<sha256>``, ignored now: it refused a genuine release after a forged one, or
#: ``<version>:*`` after a rollback, still honoured).
ACCEPTED = "accepted_release"
REFUSED = "refused_announcements"
ROLLED_BACK = "rolled_back_model"
LEGACY_REFUSED = "refused_release"
KEEP_REFUSED = 16


def announcement_id(release: ModelRelease) -> str:
    """The fingerprint of the whole signed announcement: another signature or number is another one."""
    return hashlib.sha256(release.model_dump_json().encode()).hexdigest()[:32]


#: A download must leave this much free on the state partition, for the outbox.
KEEP_FREE_BYTES = 1024 * 1024


class UpdateError(BinsightError):
    """A release was refused; ``permanent`` when the announcement itself is at fault, so retrying it
    cannot help; otherwise the cause can pass and the release is retried with backoff."""

    def __init__(self, message: str, permanent: bool = True) -> None:
        super().__init__(message)
        self.permanent = permanent


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Updater:
    """Processes the latest model release on its own thread.

    Parameters
    ----------
    current
        The running model (or None).
    activate
        Switch the agent to a verified, loaded model.
    last_frame
        The most recent usable frame, for the sanity check.
    report
        Publish an :class:`~binsight.protocol.Event` (``kind="model"``).
    """

    def __init__(
        self,
        cfg: UpdatesConfig,
        model_path: Path,
        threads: int,
        store: Outbox,
        *,
        current: Callable[[], FillModel | None],
        activate: Callable[[FillModel], None],
        last_frame: Callable[[], Frame | None],
        report: Report,
    ) -> None:
        self.cfg = cfg
        self.model_path = Path(model_path)
        self.threads = threads
        self.store = store
        self.current = current
        self.activate = activate
        self.last_frame = last_frame
        self.report = report
        # The key is parsed when the first release arrives (``--check`` parses it at install time):
        # ``cryptography`` costs ~7 MB of resident memory that a device needs only for an update.
        self.has_key = cfg.public_key is not None or cfg.public_key_file is not None
        self._pending: ModelRelease | None = None
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(30.0, 3600.0)
        self._reported: dict[str, str] = {}
        # The shadow soak: the model switched from, and how many captures it still runs alongside.
        self._shadow: tuple[FillModel, int] | None = (
            None  # announcement -> the reason last reported in this process
        )
        self.disk = DiskSpace(
            self.download_path, "model download", "the running model is kept; the release is retried later"
        )

    @property
    def prev_path(self) -> Path:
        return self.model_path.with_name(self.model_path.name + ".prev")

    @property
    def download_path(self) -> Path:
        return self.model_path.with_name(self.model_path.name + ".download")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-updates", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(10.0)

    def offer(self, payload: bytes) -> None:
        """A message on the model topic (called from the MQTT thread): queue the newest one."""
        if not payload:
            return  # the retained release was cleared
        try:
            release = ModelRelease.model_validate_json(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(message)"
            self.report("failed", None, f"malformed model release: {where}: {first['msg']}")
            return
        with self._cond:
            self._pending = release
            self._backoff.reset()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                release = self._pending
            assert release is not None
            retry = self.process(release)
            with self._cond:
                if self._pending is release:
                    if retry is None:
                        self._pending = None
                    else:
                        self._cond.wait(retry)  # a newer release or stop() wakes us early

    # ------------------------------------------------------------------ durable state
    def accepted_release(self) -> int | None:
        """The highest release number this device accepted (None: only v1 releases so far)."""
        value = self.store.get_setting(ACCEPTED)
        return int(value) if value is not None else None

    def _refused(self) -> dict[str, str]:
        """Fingerprint -> reason of the announcements refused for good, oldest first.

        Agents before reasons were kept stored bare fingerprints: those read with a generic reason.
        """
        value = self.store.get_setting(REFUSED)
        out: dict[str, str] = {}
        for item in json.loads(value) if value else []:
            if isinstance(item, str):
                out[item] = "refused before this agent kept reasons"
            else:
                out[str(item[0])] = str(item[1])
        return out

    def _remember_refused(self, ident: str, reason: str) -> None:
        refused = [[i, r] for i, r in self._refused().items() if i != ident] + [[ident, reason]]
        self.store.set_setting(REFUSED, json.dumps(refused[-KEEP_REFUSED:]))

    def _rolled_back(self) -> str | None:
        """The version rolled back after inference errors (also read from an agent before numbers)."""
        version = self.store.get_setting(ROLLED_BACK)
        legacy = self.store.get_setting(LEGACY_REFUSED)
        if version is None and legacy is not None and legacy.endswith(":*"):
            version = legacy.removesuffix(":*")
        return version

    def _is_newer(self, release: ModelRelease) -> bool:
        accepted = self.accepted_release()
        return release.release_number is not None and (accepted is None or release.release_number > accepted)

    def _accept(self, release: ModelRelease) -> None:
        if self._is_newer(release):
            self.store.set_setting(ACCEPTED, str(release.release_number))

    # ------------------------------------------------------------------ one release
    def process(self, release: ModelRelease) -> float | None:
        """Handle one release; returns seconds until a retry, or None when done with it."""
        model = self.current()
        running = model is not None and model.version == release.version
        if running and not self._is_newer(release):
            return None  # the release this device runs, redelivered
        ident = announcement_id(release)
        before = self._refused().get(ident)
        if before is not None:
            # Still a refusal the server must hear of after a restart: the stored reason, once.
            if ident not in self._reported:
                self._report_once(release, ident, "failed", f"refused before: {before}")
            return None
        try:
            self._admit(release)
            if running:
                # A newer release of the model that runs (a rollback to it): nothing to download,
                # but older releases are refused from now on.
                self._accept(release)
                logger.info("model %s re-released as %s", release.version, release.release_number)
                return None
            candidate = self._fetch_and_check(release)
            self._install(candidate, release)
        except UpdateError as exc:
            return self._refuse(release, ident, exc)
        self._backoff.reset()
        return None

    def _report_once(self, release: ModelRelease, ident: str, state: str, reason: str) -> None:
        """Send the refusal as a model event, once per announcement and reason in this process."""
        if self._reported.get(ident) == reason:
            return
        self._reported = {**dict(list(self._reported.items())[-KEEP_REFUSED:]), ident: reason}
        self.report(state, release.version, reason)
        logger.error("model release %s refused (%s): %s", release.version, state, reason)

    def _refuse(self, release: ModelRelease, ident: str, exc: UpdateError) -> float | None:
        """Report the refusal: ``failed`` and remembered when permanent, else ``retrying`` with backoff."""
        self.download_path.unlink(missing_ok=True)
        if exc.permanent:
            self._report_once(release, ident, "failed", str(exc))
            self._remember_refused(ident, str(exc))
            return None
        self._report_once(release, ident, "retrying", str(exc))
        return self._backoff.next()

    def _admit(self, release: ModelRelease) -> None:
        """Whether this device takes ``release`` at all: enabled, trusted signature, newer, not too big."""
        if not self.cfg.enabled:
            raise UpdateError("model updates are disabled in this device's config", permanent=False)
        if not self.has_key:
            # A key added to the config later (and a restart) must still install the release.
            raise UpdateError(
                "no trusted public key configured ([updates] public_key): release refused", permanent=False
            )
        from binsight.signing import SignatureError, load_public_key, parse_public_key, verify_release

        try:
            if self.cfg.public_key is not None:
                key = parse_public_key(self.cfg.public_key)
            else:
                assert self.cfg.public_key_file is not None
                key = load_public_key(self.cfg.public_key_file)
        except SignatureError as exc:
            # The device's config is at fault, not the release: retried (with backoff) until the
            # key is fixed, never remembered as a refused release. `device run --check` catches it.
            raise UpdateError(f"[updates] public key unusable: {exc}", permanent=False) from exc
        try:
            verify_release(key, release)
        except SignatureError as exc:
            raise UpdateError(str(exc)) from exc
        self._check_newer(release)
        if release.version == self._rolled_back():
            raise UpdateError(
                f"model {release.version} was rolled back on this device after inference errors"
            )
        if release.size > self.cfg.max_bytes:
            raise UpdateError(f"model is {release.size} bytes, over updates.max_bytes {self.cfg.max_bytes}")

    def _check_newer(self, release: ModelRelease) -> None:
        """Refuse a replayed or downgraded release: only release numbers above the accepted one."""
        accepted = self.accepted_release()
        if accepted is None:
            return  # no numbered release accepted yet: v1 and any number are taken
        if release.release_number is None:
            raise UpdateError(
                f"release of {release.version} has no release number (manifest v1) and this device "
                f"accepted release {accepted}: refused as a possible replay"
            )
        if release.release_number <= accepted:
            raise UpdateError(
                f"release {release.release_number} of {release.version} is not newer than release "
                f"{accepted} accepted here: refused as a replay or downgrade (a rollback is a new "
                "release: POST /api/models/rollback)"
            )

    def _fetch_and_check(self, release: ModelRelease) -> FillModel:
        self.report("downloading", release.version, self._url(release))
        self._download(release)
        self.report("verified", release.version, f"sha256 {release.sha256[:12]}..., {release.size} bytes")
        try:
            candidate = FillModel(self.download_path, self.threads)
            if candidate.version != release.version:
                raise ModelError(
                    f"model metadata says version {candidate.version!r}, the release says {release.version!r}"
                )
            candidate.sanity_check(self.last_frame())
        except ModelError as exc:
            raise UpdateError(f"new model rejected: {exc}") from exc
        return candidate

    def _url(self, release: ModelRelease) -> str:
        url = release.url
        if "://" not in url:
            if self.cfg.base_url is None:
                raise UpdateError(
                    f"release URL {url!r} is relative and updates.base_url is not set", permanent=False
                )
            url = urllib.parse.urljoin(self.cfg.base_url.rstrip("/") + "/", url.lstrip("/"))
        if not url.startswith(("http://", "https://")):
            raise UpdateError(f"release URL {url!r} is not http(s)")
        return url

    def _check_room(self, release: ModelRelease) -> None:
        """Refuse (for now) a download the state partition has no room for, before writing a byte."""
        free = free_bytes(self.download_path)
        if free is not None and free < release.size + KEEP_FREE_BYTES:
            message = (
                f"no room for model {release.version} in {self.download_path.parent}: {free} bytes free, "
                f"it needs {release.size} + {KEEP_FREE_BYTES} kept free for the outbox"
            )
            self.disk.write_failed(OSError(errno.ENOSPC, message))
            raise UpdateError(message, permanent=False)

    def _download(self, release: ModelRelease) -> None:
        url = self._url(release)
        self._check_room(release)
        size = 0
        tmp = self.download_path
        try:
            with urllib.request.urlopen(url, timeout=self.cfg.timeout_s) as resp, open(tmp, "wb") as fh:
                while chunk := resp.read(1 << 16):
                    size += len(chunk)
                    if size > release.size:
                        raise UpdateError(
                            f"download is larger than the release's {release.size} bytes", permanent=False
                        )
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if out_of_space(exc):  # the partition filled meanwhile: give the space back at once
                tmp.unlink(missing_ok=True)
                self.disk.write_failed(exc)
                raise UpdateError(
                    f"no room for model {release.version} in {tmp.parent}: {exc}", permanent=False
                ) from exc
            reason = getattr(exc, "reason", None) or exc  # urllib.error.URLError is an OSError
            raise UpdateError(f"download of {url} failed: {reason}", permanent=False) from exc
        self.disk.write_worked(f"model {release.version} downloaded")
        if size != release.size:
            # The file behind the URL may still be replaced by the right one: retried, not remembered.
            raise UpdateError(f"downloaded {size} bytes, the release says {release.size}", permanent=False)
        # The file as written, hashed by the helper the release was made with (binsight.modelfile).
        try:
            sha256, _ = file_sha256(tmp)
        except OSError as exc:
            raise UpdateError(f"cannot read the download back: {exc}", permanent=False) from exc
        if sha256 != release.sha256:
            raise UpdateError(
                f"sha256 of the download is {sha256}, the release says {release.sha256}", permanent=False
            )

    def _install(self, candidate: FillModel, release: ModelRelease) -> None:
        """Keep the current file as .prev, move the new one in; MODEL exists at every instant."""
        try:
            if self.model_path.exists():
                os.replace(self._copy_of_current(), self.prev_path)
            os.replace(self.download_path, self.model_path)
            _fsync_dir(self.model_path.parent)
        except OSError as exc:
            raise UpdateError(f"cannot install the new model file: {exc}", permanent=False) from exc
        candidate.path = self.model_path
        self._accept(release)
        previous = self.current()
        self.activate(candidate)
        if previous is not None and self.cfg.shadow_captures > 0:
            self._shadow = (previous, self.cfg.shadow_captures)
        self.report("active", release.version, f"previous model kept as {self.prev_path.name}")

    def take_shadow(self) -> FillModel | None:
        """The previous model, for the next ``shadow_captures`` captures after a switch (then None).

        The capture runs it on the same frames as the new one and the reading carries both, so the
        server judges the canary on the same frames (docs/retraining.md). Its memory is released
        after the last shadow capture; a restart ends the soak early.
        """
        shadow = self._shadow
        if shadow is None:
            return None
        model, left = shadow
        self._shadow = (model, left - 1) if left > 1 else None
        return model

    def _copy_of_current(self) -> Path:
        """``MODEL.prev.tmp``: a hard link to MODEL, a copy where links fail (removed if that fails)."""
        tmp_prev = self.model_path.with_name(self.model_path.name + ".prev.tmp")
        tmp_prev.unlink(missing_ok=True)
        try:
            os.link(self.model_path, tmp_prev)
        except OSError:
            try:
                shutil.copy2(self.model_path, tmp_prev)
            except OSError:
                tmp_prev.unlink(missing_ok=True)  # a partial copy on a full disk
                raise
        return tmp_prev

    def rollback(self, reason: str) -> FillModel | None:
        """Go back to ``MODEL.prev`` (after repeated inference errors); None when there is none."""
        if not self.prev_path.exists():
            return None
        bad = self.current()
        try:
            previous = FillModel(self.prev_path, self.threads)
            previous.sanity_check(self.last_frame())
        except ModelError as exc:
            self.report("failed", None, f"rollback impossible: previous model broken: {exc}")
            return None
        try:
            os.replace(self.prev_path, self.model_path)
            _fsync_dir(self.model_path.parent)
        except OSError as exc:
            self.report("failed", previous.version, f"rollback: cannot restore the file: {exc}")
            return None
        previous.path = self.model_path
        if bad is not None:
            self.store.set_setting(ROLLED_BACK, bad.version)
        self.activate(previous)
        self.report("rolled_back", previous.version, reason)
        return previous
