"""Ingest as one service: MQTT client, bounded queue, batch writer and reject counters."""

from __future__ import annotations

import logging
import queue

from sqlalchemy.orm import Session, sessionmaker

from binsight.server.config import ServerConfig
from binsight.server.ingest.mqtt import MqttIngest
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.writer import BatchWriter, Queued

__all__ = ["Ingest"]

logger = logging.getLogger(__name__)


class Ingest:
    """``start()`` subscribes and writes; ``stop()`` commits and acknowledges what it holds, then leaves."""

    def __init__(self, config: ServerConfig, sessions: sessionmaker[Session]) -> None:
        self.inbox: queue.Queue[Queued] = queue.Queue(maxsize=config.ingest.queue_size)
        self.rejects = RejectLog()
        self.writer = BatchWriter(
            sessions,
            self.inbox,
            self.rejects,
            batch_size=config.ingest.batch_size,
            linger_ms=config.ingest.linger_ms,
            registration_required=config.ingest.registration_required,
        )
        self.mqtt = MqttIngest(config.mqtt, config.ingest, self.inbox)

    def start(self) -> None:
        self.writer.start()
        self.mqtt.start()

    def stop(self) -> None:
        # Stop taking messages, let the writer commit and acknowledge what it has, then disconnect;
        # anything that arrives meanwhile stays unacknowledged and comes back after a restart.
        self.mqtt.paused.set()
        self.writer.stop()
        self.mqtt.stop()
        logger.info("ingest stopped: %d readings stored by this process", self.writer.stats.readings_ingested)

    def queue_depth(self) -> int:
        return self.inbox.qsize()
