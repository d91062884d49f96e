"""Labelling: queue (unsure first), image, label with who and when, skip, stats, export zip."""

from __future__ import annotations

import csv
import io
import zipfile

from server_helpers import JPEG, Api, image, item

from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.engine import now_ms
from binsight.server.ingest.store import BinRegistry, write_batch


def _seed(api: Api) -> list[int]:
    t = now_ms()
    with api.sessions() as s, s.begin():
        import_bins(s, [BinRow("L1", 52.0, 4.0, 500, site="west")])
        write_batch(
            s,
            [
                item("image", "L1", image("L1", 1, "periodic", jpeg=JPEG + b"1", ts=t - 3000)),
                item("image", "L1", image("L1", 2, "unsure", jpeg=JPEG + b"2", ts=t - 2000)),
                item("image", "L2", image("L2", 3, "periodic", jpeg=JPEG + b"3", ts=t - 1000)),
            ],
            BinRegistry(),
            False,
            t,
        )
    return [q["image_id"] for q in api.get("/api/labels/queue", "labeller").json()]


def test_queue_label_skip_stats_export(api: Api) -> None:
    """The whole labelling loop, ending in a zip that is a valid labelled set."""
    ids = _seed(api)
    queue = api.get("/api/labels/queue", "labeller").json()
    assert [q["reason"] for q in queue] == ["unsure", "periodic", "periodic"]
    assert queue[0]["bin_id"] == "L1" and queue[0]["predicted_fill"] == 0.4
    img = api.get(f"/api/images/{ids[0]}", "labeller")
    assert (
        img.status_code == 200 and img.headers["content-type"] == "image/jpeg" and img.content == JPEG + b"2"
    )

    assert api.post(f"/api/images/{ids[0]}/label", "labeller", json={"fill": 0.75}).status_code == 200
    assert api.post(f"/api/images/{ids[1]}/label", "labeller", json={"fill": 1.5}).status_code == 422
    assert api.post(f"/api/images/{ids[1]}/label", "labeller", json={}).status_code == 422
    assert api.post("/api/images/999999/label", "labeller", json={"fill": 0.1}).status_code == 404
    assert api.post(f"/api/images/{ids[1]}/skip", "labeller").status_code == 200
    mine = [q["image_id"] for q in api.get("/api/labels/queue", "labeller").json()]
    assert mine == [ids[2]]
    theirs = [q["image_id"] for q in api.get("/api/labels/queue", "admin").json()]
    assert theirs == [ids[1], ids[2]]  # a skip hides the image from the skipper only
    assert queue[1]["bin_id"] == "L2"  # periodic ones newest first
    assert api.post(f"/api/images/{ids[1]}/label", "admin", json={"fill": 0.2}).status_code == 200
    assert api.post(f"/api/images/{ids[2]}/label", "admin", json={"unusable": True}).status_code == 200
    assert api.get("/api/labels/queue", "labeller").json() == []

    stats = api.get("/api/labels/stats", "operator").json()
    assert stats == {"per_bin": {"L1": 1, "L2": 1}, "per_site": {"west": 1, "(none)": 1}, "total": 2}

    r = api.get("/api/labels/export", "labeller")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    z = zipfile.ZipFile(io.BytesIO(r.content))
    rows = list(csv.DictReader(io.StringIO(z.read("labels.csv").decode())))
    assert sorted((row["bin_id"], float(row["fill"])) for row in rows) == [("L1", 0.75), ("L2", 0.2)]
    for row in rows:
        assert z.read(row["image"]).startswith(b"\xff\xd8")
        assert row["captured_at"].endswith("Z")


def test_image_ids_beyond_64_bits_are_422(api: Api) -> None:
    """An image id is a signed 64-bit key: 2^63 and more are refused by the route (422), not passed to
    the database (once an OverflowError, HTTP 500); the largest key is an ordinary unknown image."""
    label = {"fill": 0.5}
    for method, path, body in [
        ("GET", "/api/images/{}", None),
        ("POST", "/api/images/{}/label", label),
        ("POST", "/api/images/{}/skip", None),
    ]:
        for image_id in (2**63, 2**64, 10**30, -1, 2**63 - 1):
            r = api.client.request(method, path.format(image_id), headers=api.h("labeller"), json=body)
            if image_id == 2**63 - 1:
                assert r.status_code == 404 and "no image" in r.json()["detail"], (path, r.text)
            else:
                assert r.status_code == 422, (path, image_id, r.status_code, r.text)
                assert ("less" if image_id > 0 else "greater") + " than or equal to" in r.text


def test_queue_size_and_reference_images(api: Api) -> None:
    """The queue's true size per user; the site's labelled images nearest empty and nearest full."""
    ids = _seed(api)  # queue order: ids[0] and ids[2] are bin L1's (site west), ids[1] is L2's
    assert api.get("/api/labels/queue/size", "labeller").json() == {"waiting": 3}
    assert api.get("/api/labels/references?bin_id=L1", "labeller").json() == {
        "site": "west",
        "empty": None,
        "full": None,
    }
    api.post(f"/api/images/{ids[0]}/label", "labeller", json={"fill": 0.9})
    api.post(f"/api/images/{ids[1]}/skip", "labeller")
    assert api.get("/api/labels/queue/size", "labeller").json() == {"waiting": 1}
    assert api.get("/api/labels/queue/size", "admin").json() == {"waiting": 2}  # skips are per user
    one = api.get("/api/labels/references?bin_id=L1", "operator").json()
    assert one["empty"]["image_id"] == ids[0] and one["full"] is None  # one example: no pair yet
    api.post(f"/api/images/{ids[2]}/label", "admin", json={"fill": 0.1})
    refs = api.get("/api/labels/references?bin_id=L1", "labeller").json()
    assert refs["empty"] == {"image_id": ids[2], "bin_id": "L1", "fill": 0.1}
    assert refs["full"] == {"image_id": ids[0], "bin_id": "L1", "fill": 0.9}
    assert api.get("/api/labels/references?bin_id=nope", "labeller").status_code == 404


def test_class_labels_beside_fill_are_exported_together(api: Api) -> None:
    """A label with fill and class, one with a class only: ``kind=both`` exports both columns (either may
    be empty), ``kind=fill`` stays as it was; the classes a labeller is offered come first from the
    active model (none here), then the usual ones."""
    ids = _seed(api)
    assert (
        api.post(
            f"/api/images/{ids[0]}/label", "labeller", json={"fill": 0.9, "label": "overflowing"}
        ).status_code
        == 200
    )
    assert (
        api.post(f"/api/images/{ids[1]}/label", "labeller", json={"label": "contaminated"}).status_code == 200
    )
    assert api.post(f"/api/images/{ids[2]}/label", "labeller", json={"fill": 0.3}).status_code == 200
    z = zipfile.ZipFile(io.BytesIO(api.get("/api/labels/export?kind=both", "labeller").content))
    text = z.read("labels.csv").decode()
    assert text.splitlines()[0] == "image,fill,label,bin_id,captured_at"
    rows = sorted((r["fill"], r["label"]) for r in csv.DictReader(io.StringIO(text)))
    assert rows == [("", "contaminated"), ("0.3", ""), ("0.9", "overflowing")]
    z = zipfile.ZipFile(io.BytesIO(api.get("/api/labels/export", "labeller").content))
    fills = list(csv.DictReader(io.StringIO(z.read("labels.csv").decode())))
    assert sorted(r["fill"] for r in fills) == ["0.3", "0.9"] and "label" not in fills[0]
    got = api.get("/api/labels/classes", "labeller").json()
    assert got == {"classes": ["clean", "overflowing", "contaminated", "blocked"], "model": [],
                   "flagged": ["overflowing", "contaminated"]}  # fmt: skip
