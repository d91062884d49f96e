"""Signed model releases: verified, downloaded, checked, swapped; bad ones refused, old model kept."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
from pathlib import Path

import pytest
from device_support import Collector, build_model, load_config, scene, write_config

from binsight.device.agent import Agent
from binsight.device.config import UpdatesConfig
from binsight.device.inference import FillModel, load_model
from binsight.device.outbox import Outbox
from binsight.device.updates import Updater
from binsight.protocol import ModelRelease
from binsight.signing import format_public_key, generate_key, make_release, sign_release

_NUMBERS = itertools.count(1)


def numbered(model: Path, key, version: str, url: str, number: int | None = None) -> ModelRelease:
    """A signed v2 release; without ``number``, the next one (each call a newer release)."""
    return make_release(model, key, version, url, release_number=number or next(_NUMBERS))


def unnumbered(model: Path, key, version: str, url: str) -> ModelRelease:
    """A v1 release (no release number), as servers signed them before release numbers."""
    return make_release(model, key, version, url, release_number=None)


class Harness:
    """An Updater wired to a model slot, as the agent wires it."""

    def __init__(
        self, tmp: Path, model: Path, base_url: str, public_key: str | None, *, copy: bool = True
    ) -> None:
        self.path = tmp / "model.onnx"
        if copy:
            shutil.copy(model, self.path)
        self.model: FillModel | None = FillModel(self.path)
        self.events: list[tuple[str, str | None, str | None]] = []
        self.outbox = Outbox(tmp / "state.db")
        cfg = UpdatesConfig(public_key=public_key, base_url=base_url)
        self.updater = Updater(
            cfg,
            self.path,
            1,
            self.outbox,
            current=lambda: self.model,
            activate=self._activate,
            last_frame=lambda: scene(120),
            report=lambda s, v, d: self.events.append((s, v, d)),
        )

    def _activate(self, m: FillModel) -> None:
        self.model = m

    def states(self) -> list[str]:
        return [s for s, _, _ in self.events]

    def restart(self, public_key: str | None) -> Harness:
        """The same device after a restart: its model file and state DB, a new updater."""
        self.outbox.close()
        return Harness(self.path.parent, self.path, self.updater.cfg.base_url or "", public_key, copy=False)

    def answers(self) -> float | None:
        assert self.model is not None
        return self.model.predict([scene(120)])[0].fill


@pytest.fixture
def key():
    return generate_key()


@pytest.fixture
def harness(tmp_path: Path, model_v1: Path, http_dir, key) -> Harness:
    _, base = http_dir
    return Harness(tmp_path, model_v1, base, format_public_key(key.public_key()))


def publish_file(http_dir, model: Path, name: str) -> str:
    folder, _ = http_dir
    shutil.copy(model, folder / name)
    return f"/{name}"


def test_good_release_is_verified_activated_and_previous_kept(
    harness: Harness, http_dir, key, model_v2
) -> None:
    """A signed release goes downloading -> verified -> active; MODEL.prev holds the old file."""
    url = publish_file(http_dir, model_v2, "v2.onnx")
    release = numbered(model_v2, key, "v2", url)
    assert harness.updater.process(release) is None
    assert harness.states() == ["downloading", "verified", "active"]
    assert harness.model is not None and harness.model.version == "v2"
    assert harness.answers() == pytest.approx(1 - 120 / 255, abs=0.03)
    assert FillModel(harness.path).version == "v2"
    assert FillModel(harness.updater.prev_path).version == "v1"
    assert not harness.updater.download_path.exists()


def _refused(harness: Harness, release: ModelRelease, needle: str, state: str = "failed") -> None:
    """Refused with ``needle`` in the reason: ``failed`` (for good) or ``retrying`` (the cause can pass)."""
    before = harness.path.read_bytes()
    harness.updater.process(release)
    assert harness.states()[-1] == state, harness.events
    assert needle in (harness.events[-1][2] or ""), harness.events[-1]
    assert harness.model is not None and harness.model.version == "v1"
    assert harness.answers() == pytest.approx(120 / 255, abs=0.03), "the old model must keep answering"
    assert harness.path.read_bytes() == before
    assert not harness.updater.download_path.exists()


def test_wrong_signature_refused_before_download(harness: Harness, http_dir, model_v2) -> None:
    """Signed by another key: refused, nothing downloaded."""
    url = publish_file(http_dir, model_v2, "v2.onnx")
    release = numbered(model_v2, generate_key(), "v2", url)
    _refused(harness, release, "signature does not match")
    assert "downloading" not in harness.states()


def test_unsigned_and_relabelled_releases_refused(harness: Harness, http_dir, key, model_v2) -> None:
    """A garbage signature, or a valid one moved onto another version, is refused."""
    url = publish_file(http_dir, model_v2, "v2.onnx")
    good = numbered(model_v2, key, "v2", url)
    _refused(harness, good.model_copy(update={"signature": "AAAA"}), "signature has 3 bytes")
    _refused(harness, good.model_copy(update={"version": "v3"}), "signature does not match")


def test_wrong_hash_refused(harness: Harness, http_dir, key, model_v2, model_v1) -> None:
    """The server serves another file than the one signed: the sha256 check refuses it."""
    url = publish_file(http_dir, model_v1, "v2.onnx")  # wrong bytes behind the URL, same size
    release = numbered(model_v2, key, "v2", url)
    if release.size != model_v1.stat().st_size:
        folder, _ = http_dir
        data = model_v1.read_bytes()
        (folder / "v2.onnx").write_bytes((data + b"\0" * release.size)[: release.size])
    _refused(harness, release, "sha256 of the download", "retrying")


def test_corrupt_model_refused(harness: Harness, http_dir, key, tmp_path: Path) -> None:
    """Correctly signed and hashed, but not an ONNX model: refused at load."""
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf" * 100)
    url = publish_file(http_dir, junk, "junk.onnx")
    _refused(harness, numbered(junk, key, "v9", url), "cannot load ONNX model")


def test_insane_model_refused(harness: Harness, http_dir, key, tmp_path: Path) -> None:
    """A model whose output leaves 0..1 on the last frame fails the sanity check."""
    bad = build_model(tmp_path / "bad.onnx", "bad", scale=4.0)
    url = publish_file(http_dir, bad, "bad.onnx")
    _refused(harness, numbered(bad, key, "bad", url), "outside [0, 1]")


def test_version_mismatch_and_size_refused(harness: Harness, http_dir, key, model_v2) -> None:
    """The metadata must carry the release's version; a download larger than announced is cut."""
    url = publish_file(http_dir, model_v2, "v2.onnx")
    _refused(harness, numbered(model_v2, key, "other", url), "metadata says version 'v2'")
    release = numbered(model_v2, key, "v2", url)
    small = release.size - 10
    forged = release.model_copy(
        update={
            "size": small,
            "signature": sign_release(
                key,
                "v2",
                release.sha256,
                small,
                release_number=release.release_number,
                issued_at=release.issued_at,
            ),
        }
    )
    _refused(harness, forged, "larger than the release", "retrying")


def test_no_key_configured_refuses(tmp_path: Path, model_v1: Path, model_v2: Path, http_dir, key) -> None:
    """Without a trusted public key every release is refused."""
    _, base = http_dir
    h = Harness(tmp_path, model_v1, base, None)
    url = publish_file(http_dir, model_v2, "v2.onnx")
    _refused(h, numbered(model_v2, key, "v2", url), "no trusted public key", "retrying")


def test_malformed_key_is_retried_not_remembered(
    tmp_path: Path, model_v1: Path, model_v2: Path, http_dir, key
) -> None:
    """A malformed configured key fails the release with the reason, as a retry: the release is
    not at fault, so it is not remembered as refused (fixing the key and restarting installs it)."""
    _, base = http_dir
    h = Harness(tmp_path, model_v1, base, "ed25519:abc")
    release = numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"))
    retry = h.updater.process(release)
    assert retry is not None and retry > 0
    assert h.states() == ["retrying"]
    assert "public key unusable" in (h.events[-1][2] or "")
    assert h.outbox.get_setting("refused_announcements") is None
    assert h.model is not None and h.model.version == "v1"


def test_download_error_is_retried(harness: Harness, key, model_v2) -> None:
    """A missing file (HTTP 404) is a transient failure: a retry delay comes back."""
    release = numbered(model_v2, key, "v2", "/missing.onnx")
    retry = harness.updater.process(release)
    assert retry is not None and retry > 0
    assert harness.states()[-1] == "retrying"
    assert harness.outbox.get_setting("refused_announcements") is None


def test_refused_release_not_fetched_again(harness: Harness, http_dir, key, tmp_path: Path) -> None:
    """A permanently refused release is remembered (a retained announcement comes back on restart)."""
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"x" * 500)
    release = numbered(junk, key, "v9", publish_file(http_dir, junk, "junk.onnx"))
    harness.updater.process(release)
    n = len(harness.events)
    harness.updater.process(release)
    assert len(harness.events) == n


def test_a_remembered_refusal_is_reported_again_after_a_restart(
    harness: Harness, http_dir, key, tmp_path: Path
) -> None:
    """The retained announcement comes back after a restart: not fetched again, but the server still
    hears why (one ``failed`` event with the stored reason), not an INFO line only on the device."""
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"x" * 500)
    release = numbered(junk, key, "v9", publish_file(http_dir, junk, "junk.onnx"))
    harness.updater.process(release)
    after = harness.restart(format_public_key(key.public_key()))
    for _ in range(2):
        assert after.updater.process(release) is None
    assert after.states() == ["failed"], after.events
    assert "refused before: new model rejected" in (after.events[-1][2] or "")


def test_rollback_at_start_when_model_file_is_broken(tmp_path: Path, model_v1: Path) -> None:
    """A corrupt MODEL with a good MODEL.prev: the agent starts on the previous model."""
    model = tmp_path / "model.onnx"
    model.write_bytes(b"corrupt")
    shutil.copy(model_v1, tmp_path / "model.onnx.prev")
    cfg = load_config(write_config(tmp_path, bin_id="bin-rb", source="0", model=model, port=1))
    agent = Agent(cfg)
    agent.load_initial_model()
    assert agent.model is not None and agent.model.version == "v1"
    assert FillModel(model).version == "v1"
    agent.outbox.close()


@pytest.mark.broker
def test_agent_switches_on_retained_release(
    tmp_path: Path, mosquitto, scenes: Path, model_v1: Path, model_v2: Path, http_dir, key, collector_factory
) -> None:
    """End to end: a retained signed release on the model topic; the agent's readings switch to v2,
    and a later tampered release is refused while v2 keeps answering."""
    folder, base = http_dir
    shutil.copy(model_v2, folder / "v2.onnx")
    model = tmp_path / "model.onnx"
    shutil.copy(model_v1, model)
    extra = f'[updates]\npublic_key = "{format_public_key(key.public_key())}"\nbase_url = "{base}"\n'
    cfg = load_config(
        write_config(tmp_path, bin_id="bin-up", source=scenes, model=model, port=mosquitto.port, extra=extra)
    )
    col: Collector = collector_factory(mosquitto.port)
    agent = Agent(cfg)
    agent.start()
    try:
        col.wait_for(lambda: len(col.payloads("reading")) >= 1)
        release = numbered(model_v2, key, "v2", "/v2.onnx")
        col.client.publish("binsight/bin-up/model", release.model_dump_json(), qos=1, retain=True)
        col.wait_for(lambda: any(r["model"] == "v2" for r in col.payloads("reading")))
        states = [e["state"] for e in col.payloads("event") if e["kind"] == "model"]
        assert states == ["downloading", "verified", "active"]
        bad = release.model_copy(update={"version": "v3"})
        col.client.publish("binsight/bin-up/model", bad.model_dump_json(), qos=1, retain=True)
        col.wait_for(lambda: any(e["state"] == "failed" for e in col.payloads("event")))
        n = len(col.payloads("reading"))
        col.wait_for(lambda: len(col.payloads("reading")) >= n + 2)
        assert col.payloads("reading")[-1]["model"] == "v2"
        col.client.publish("binsight/bin-up/model", b"", qos=1, retain=True)
    finally:
        agent.stop()


def test_load_model_shares_sessions(model_v1: Path, tmp_path: Path) -> None:
    """Two agents on the same file share one ONNX Runtime session."""
    copy = tmp_path / "copy.onnx"
    shutil.copy(model_v1, copy)
    assert load_model(model_v1) is load_model(copy)


def test_offer_reports_malformed_release(harness: Harness) -> None:
    """A malformed announcement is reported as failed, naming the field."""
    harness.updater.offer(json.dumps({"version": "v2"}).encode())
    assert harness.states() == ["failed"] and "url" in (harness.events[0][2] or "")
    harness.updater.offer(b"")  # a cleared retained message is ignored
    assert len(harness.events) == 1


def test_rollback_after_repeated_inference_errors(tmp_path: Path, model_v1: Path, http_dir, key) -> None:
    """A new model that passes the check on the last frame but fails on later ones is rolled back
    after max_consecutive_errors, and its release is not taken again."""
    frames = [scene(80)] + [scene(200, i) for i in range(3)] + [scene(90)]

    class Scripted:
        live = False

        def open(self) -> None:
            pass

        def close(self) -> None:
            pass

        def read_burst(self, n: int, gap_s: float) -> list:
            return [frames.pop(0)]

    folder, base = http_dir
    # fill = 2 * mean / 255, unclipped: sane on dim frames, out of range on bright ones.
    flaky = build_model(folder / "flaky.onnx", "flaky", scale=2.0)
    model = tmp_path / "model.onnx"
    shutil.copy(model_v1, model)
    extra = f'[updates]\npublic_key = "{format_public_key(key.public_key())}"\nbase_url = "{base}"\n'
    cfg = load_config(write_config(tmp_path, bin_id="bin-fl", source="0", model=model, port=1, extra=extra))
    agent = Agent(cfg, source=Scripted())
    agent.load_initial_model()
    first = agent.capture_and_send()
    assert first is not None and first.model == "v1"
    assert agent.updater.process(numbered(flaky, key, "flaky", "/flaky.onnx")) is None
    assert agent.model is not None and agent.model.version == "flaky"
    qualities = [agent.capture_and_send().quality for _ in range(3)]  # type: ignore[union-attr]
    assert qualities == ["inference_error"] * 3
    assert agent.model.version == "v1", "rolled back to MODEL.prev"
    assert FillModel(model).version == "v1"
    last = agent.capture_and_send()
    assert last is not None and last.model == "v1" and last.quality == "ok"
    states = [json.loads(r.payload)["state"] for r in agent.outbox.after(0, 100) if r.kind == "event"]
    assert states == ["downloading", "verified", "active", "rolled_back"]
    assert agent.updater.process(numbered(flaky, key, "flaky", "/flaky.onnx")) is None
    assert agent.model.version == "v1", "a rolled-back release is not installed again"
    agent.outbox.close()


FORGED = base64.b64encode(bytes(64)).decode()  # well-formed, signs nothing


def test_forged_release_does_not_block_the_genuine_one(harness: Harness, http_dir, key, model_v2) -> None:
    """A garbage signature for v2 is refused once (also when redelivered); the correctly signed v2
    announced after it is judged on its own and installed (the refusal was keyed on version + sha256)."""
    good = numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"))
    forged = good.model_copy(update={"signature": FORGED})
    _refused(harness, forged, "signature does not match")
    assert harness.updater.process(forged) is None  # the retained copy, redelivered
    assert harness.states() == ["failed"], "one report per distinct announcement"
    assert harness.updater.process(good) is None
    assert harness.model is not None and harness.model.version == "v2"
    assert harness.states() == ["failed", "downloading", "verified", "active"]


def test_state_of_an_agent_before_release_numbers_keeps_working(
    harness: Harness, http_dir, key, model_v2, tmp_path: Path
) -> None:
    """An old ``refused_release`` of version + sha256 no longer blocks that version; an old
    ``<version>:*`` (rolled back after inference errors) still refuses it; v1 releases still install."""
    good = unnumbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"))
    assert good.release_number is None  # a v1 release, as the server signed them before
    harness.outbox.set_setting("refused_release", f"v2:{good.sha256}")
    assert harness.updater.process(good) is None
    assert harness.model is not None and harness.model.version == "v2"
    assert harness.updater.accepted_release() is None, "v1 releases carry no number"
    junk = tmp_path / "v9.onnx"
    junk.write_bytes(b"x" * 500)
    harness.outbox.set_setting("refused_release", "v9:*")
    rolled_back = numbered(junk, key, "v9", publish_file(http_dir, junk, "v9.onnx"))
    harness.updater.process(rolled_back)
    assert harness.events[-1][0] == "failed" and "rolled back on this device" in (harness.events[-1][2] or "")
    assert "downloading" not in harness.states()[4:]


def test_replayed_older_release_refused_across_restarts(
    harness: Harness, http_dir, key, model_v1, model_v2
) -> None:
    """After release 4 (v2), a validly signed release 1 (v1) and an unnumbered v1 release are
    refused with the reason; the highest accepted number survives a restart."""
    v1_url = publish_file(http_dir, model_v1, "v1.onnx")
    old = numbered(model_v1, key, "v1", v1_url, number=1)
    v1_release = unnumbered(model_v1, key, "v1", v1_url)
    assert (
        harness.updater.process(numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"), 4))
        is None
    )
    assert harness.model is not None and harness.model.version == "v2"
    assert harness.updater.accepted_release() == 4
    after = harness.restart(format_public_key(key.public_key()))
    for replay, needle in (
        (old, "release 1 of v1 is not newer than release 4"),
        (v1_release, "no release number"),
    ):
        assert after.updater.process(replay) is None
        assert after.events[-1][0] == "failed" and needle in (after.events[-1][2] or ""), after.events
        assert after.model is not None and after.model.version == "v2"
    assert "downloading" not in after.states()
    after.updater.process(old)  # redelivered: remembered, not reported again
    assert after.states() == ["failed", "failed"]


def test_rollback_is_a_newer_release_of_the_older_model(
    harness: Harness, http_dir, key, model_v1, model_v2
) -> None:
    """Release 6 of v1 after release 5 of v2 installs v1; release 5 replayed is then refused, and a
    newer release of the model already running only raises the accepted number."""
    v2 = numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"), 5)
    assert harness.updater.process(v2) is None
    assert (
        harness.updater.process(numbered(model_v1, key, "v1", publish_file(http_dir, model_v1, "v1.onnx"), 6))
        is None
    )
    assert harness.model is not None and harness.model.version == "v1"
    assert harness.updater.accepted_release() == 6
    harness.updater.process(v2)
    assert harness.events[-1][0] == "failed" and "not newer than release 6" in (harness.events[-1][2] or "")
    n = len(harness.events)
    assert harness.updater.process(numbered(model_v1, key, "v1", "/v1.onnx", 7)) is None
    assert harness.updater.accepted_release() == 7 and len(harness.events) == n


def test_forged_number_is_not_accepted(harness: Harness, http_dir, key, model_v2) -> None:
    """A release number changed after signing fails the signature and is not remembered as accepted."""
    good = numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"), 3)
    _refused(harness, good.model_copy(update={"release_number": 1000}), "signature does not match")
    assert harness.updater.accepted_release() is None
    assert harness.updater.process(good) is None and harness.updater.accepted_release() == 3


def test_missing_key_is_not_remembered(tmp_path: Path, model_v1: Path, model_v2: Path, http_dir, key) -> None:
    """No key configured yet: refused and retried, never remembered, so the release installs once a
    key is configured and the agent restarts."""
    _, base = http_dir
    h = Harness(tmp_path, model_v1, base, None)
    release = numbered(model_v2, key, "v2", publish_file(http_dir, model_v2, "v2.onnx"))
    assert h.updater.process(release) is not None
    assert h.outbox.get_setting("refused_announcements") is None
    fixed = h.restart(format_public_key(key.public_key()))
    assert fixed.updater.process(release) is None
    assert fixed.model is not None and fixed.model.version == "v2"


def test_transient_failure_reported_once(harness: Harness, key, model_v2) -> None:
    """A download error retried three times is one ``retrying`` event, not one per retry."""
    release = numbered(model_v2, key, "v2", "/missing.onnx")
    for _ in range(3):
        assert harness.updater.process(release) is not None
    assert harness.states().count("retrying") == 1
