"""Ingest as one service: the broker connection's subscriptions feeding the batch writer."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from binsight.server.broker import BrokerConnection
from binsight.server.config import ServerConfig
from binsight.server.forecast.smoothing import SmoothParams
from binsight.server.ingest.rejects import RejectLog
from binsight.server.ingest.writer import BatchWriter

__all__ = ["Ingest"]

logger = logging.getLogger(__name__)


class Ingest:
    """``start()`` subscribes and writes; ``stop()`` commits and acknowledges what it holds, then leaves.

    Ingest starts and stops the broker connection it is given: acknowledgements ride on that
    connection, so it may only close after the writer committed and acknowledged its last batch.

    Parameters
    ----------
    config
        The server config (``[ingest]``).
    sessions
        The database.
    broker
        The server's broker connection; its inbox is what the writer drains.
    """

    def __init__(
        self, config: ServerConfig, sessions: sessionmaker[Session], broker: BrokerConnection
    ) -> None:
        self.broker = broker
        self.inbox = broker.inbox
        self.rejects = RejectLog()
        self.writer = BatchWriter(
            sessions,
            self.inbox,
            self.rejects,
            batch_size=config.ingest.batch_size,
            linger_ms=config.ingest.linger_ms,
            registration_required=config.ingest.registration_required,
            smoothing=SmoothParams.from_config(config.forecast),
        )

    def start(self) -> None:
        self.writer.start()
        self.broker.start()

    def stop(self) -> None:
        # Stop taking messages, let the writer commit and acknowledge what it has, then disconnect;
        # anything that arrives meanwhile stays unacknowledged and comes back after a restart.
        self.broker.pause()
        self.writer.stop()
        self.broker.stop()
        logger.info("ingest stopped: %d readings stored by this process", self.writer.stats.readings_ingested)

    def queue_depth(self) -> int:
        return self.inbox.qsize()
