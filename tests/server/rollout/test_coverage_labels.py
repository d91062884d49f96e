"""Coverage sampling counts each image's label that counts, not every label ever given."""

from __future__ import annotations

from collections.abc import Callable

from label_helpers import add_image, add_label
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import ServerConfig
from binsight.server.db.models import Device
from binsight.server.rollout.coverage import coverage_plan

NOON = 1_764_158_400_000  # 2025-11-26T12:00:00Z


def test_a_corrected_label_is_one_label(
    sessions: sessionmaker[Session], make_config: Callable[..., ServerConfig]
) -> None:
    """Relabelling an image, or making it unusable, does not add labels to its bin's count."""
    config = make_config(rollout={"coverage_target": 8}, forecast={"timezone": "UTC"})
    with sessions() as s, s.begin():
        s.add(Device(bin_id="C1", available="online", fill=0.9))
        corrected = add_image(s, "C1", NOON + 1_000, seq=1)
        add_label(s, corrected, NOON + 2_000, fill=0.1)
        add_label(s, corrected, NOON + 3_000, fill=0.95)  # the labeller's correction
        add_label(s, corrected, NOON + 4_000, fill=0.9, who="bob")
        unusable = add_image(s, "C1", NOON + 5_000, seq=2)
        add_label(s, unusable, NOON + 6_000, fill=0.9)
        add_label(s, unusable, NOON + 7_000, unusable=True)
    (plan,) = coverage_plan(sessions, config, NOON + 3_600_000, drifted=set())
    assert plan["bin_id"] == "C1"
    assert plan["reasons"] == [
        "1 labels (< 8)",
        "1 labels at this time of day",
        "1 labels at fill 75-100%",
    ]
