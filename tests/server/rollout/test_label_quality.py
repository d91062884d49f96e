"""Label quality: second labels offered, agreement and per-labeller bias, gold (just-emptied) images.

The issue's case: one labeller reads 0.11 high on average. On images two people labelled, that shows
as a bias against the other; on images taken at a detected collection (truth: about empty), as a
bias against a known fill.
"""

from __future__ import annotations

import pytest
from label_helpers import add_image, add_label
from server_helpers import Api

from binsight.server.db.models import Reading

T0 = 1_795_000_000_000
STEP = 600_000


def _readings(api: Api, bin_id: str, fills: list[float]) -> None:
    with api.sessions() as s, s.begin():
        for i, f in enumerate(fills):
            ts = T0 + i * STEP
            s.add(Reading(bin_id=bin_id, seq=i, ts=ts, received_at=ts, fill=f, quality="ok", model="m1"))


def test_second_labels_agreement_bias_and_gold(api: Api) -> None:
    """Bin b1 fills to 0.8, is emptied at seq 5, fills again. ann labels truly, bob 0.11 high; both
    label the images at seq 2, 3 and the one at the collection (seq 5); ann alone labels seq 7."""
    _readings(api, "b1", [0.5, 0.6, 0.7, 0.75, 0.8, 0.02, 0.05, 0.1, 0.15])
    truth = {2: 0.7, 3: 0.75, 5: 0.0, 7: 0.1}
    with api.sessions() as s, s.begin():
        ids = {seq: add_image(s, "b1", T0 + seq * STEP, seq=seq) for seq in truth}
        for seq, fill in truth.items():
            add_label(s, ids[seq], T0 + 10**7 + seq, fill=fill, who="ann")
            if seq != 7:
                add_label(s, ids[seq], T0 + 2 * 10**7 + seq, fill=round(fill + 0.11, 2), who="bob")
    q = api.get("/api/labels/quality", "operator").json()
    assert q["double_labelled"]["images"] == 3
    assert q["double_labelled"]["mean_abs_diff"] == pytest.approx(0.11, abs=1e-6)
    assert q["double_labelled"]["within_0_1"] == 0.0
    assert q["gold"]["images"] == 1
    by = {lab["who"]: lab for lab in q["labellers"]}
    assert by["ann"]["bias_vs_others"] == pytest.approx(-0.11) and by["bob"][
        "bias_vs_others"
    ] == pytest.approx(0.11)
    assert (by["ann"]["gold"], by["ann"]["bias_vs_gold"]) == (1, 0.0)
    assert by["bob"]["bias_vs_gold"] == pytest.approx(0.11)
    assert (by["ann"]["labels"], by["bob"]["labels"]) == (4, 3)
    assert api.get("/api/labels/quality", "labeller").status_code == 403


def test_the_queue_offers_a_share_for_a_second_label(api: Api) -> None:
    """One labelled image in ten (by id) that one other person labelled comes back to someone else as
    ``second_opinion``, in every tenth place of the queue even while unlabelled images wait (cameras
    keep sending: a queue that never empties still gets its share labelled twice); never to the person
    who labelled it, and not again once two people labelled it."""
    with api.sessions() as s, s.begin():
        ids = [add_image(s, "b2", T0 + i, seq=i) for i in range(60)]
        for i in ids[:40]:
            add_label(s, i, T0 + 10**6, fill=0.3, who="someone-else")
    eligible = {i for i in ids[:40] if i % 10 == 0}
    assert len(eligible) == 4
    page = api.get("/api/labels/queue?limit=20", "labeller").json()
    assert [q["second_opinion"] for q in page] == [(n + 1) % 10 == 0 for n in range(20)]
    assert {q["image_id"] for q in page if q["second_opinion"]} <= eligible
    assert {q["image_id"] for q in page if not q["second_opinion"]} <= set(ids[40:])
    queue = api.get("/api/labels/queue?limit=100", "labeller").json()
    fresh = [q for q in queue if not q["second_opinion"]]
    second = [q for q in queue if q["second_opinion"]]
    assert {q["image_id"] for q in fresh} == set(ids[40:])
    assert {q["image_id"] for q in second} == eligible
    with api.sessions() as s, s.begin():
        for q in second:
            add_label(s, q["image_id"], T0 + 10**7, fill=0.35, who="labeller-test")
    again = api.get("/api/labels/queue?limit=100", "labeller").json()
    assert not [q for q in again if q["second_opinion"]], "labelled twice: not offered again"
