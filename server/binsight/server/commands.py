"""Handlers of `binsight server run | token create|list|revoke | bins import | migrate | prune-images |
export-labels`."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from binsight.server.config import load_server_config

__all__ = [
    "bins_import",
    "export_labels",
    "migrate",
    "prune_images",
    "run",
    "token_create",
    "token_list",
    "token_revoke",
]

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    config = load_server_config(args.config)
    if args.check:
        print(config.model_dump_json(indent=2, by_alias=True))
        return 0
    from binsight.server.runtime import ServerRuntime

    runtime = ServerRuntime(config)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # 0 after SIGTERM; 1 when one of the server's threads died (logged), so systemd restarts it.
    return runtime.serve(stop)


def token_create(args: argparse.Namespace) -> int:
    from binsight.server.auth import create_token
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    upgrade(engine)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            token = create_token(s, args.role, args.name, getattr(args, "truck", None))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(token)  # alone on stdout, so `TOKEN=$(binsight server token create ...)` works
    return 0


def _when(ms: int | None) -> str:
    import datetime as dt

    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def token_list(args: argparse.Namespace) -> int:
    """One line per token; the tokens themselves are not stored, so only their ids and names show."""
    from binsight.server.auth import token_rows
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as s:
            rows = token_rows(s, include_revoked=args.all)
            lines = [
                f"{t.id:>4}  {t.name:<24} {t.role:<9} {t.truck or '-':<10} created {_when(t.created_at)}"
                f"  used {_when(t.last_used_at)}"
                + (f"  REVOKED {_when(t.revoked_at)}" if t.revoked_at else "")
                for t in rows
            ]
    finally:
        engine.dispose()
    print(f"{'id':>4}  {'name':<24} {'role':<9} {'truck':<10}")
    print("\n".join(lines) if lines else "(no tokens)")
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    from binsight.server.auth import revoke_token
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as s, s.begin():
            tok = revoke_token(s, args.id)
            name, role = tok.name, tok.role
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"revoked token {args.id} ({name}, {role})", file=sys.stderr)
    return 0


def bins_import(args: argparse.Namespace) -> int:
    from binsight.server.bins_import import import_bins, read_bins
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade

    config = load_server_config(args.config)
    rows = read_bins(args.file)
    engine = make_engine(config.database)
    upgrade(engine)
    with make_sessionmaker(engine)() as s, s.begin():
        created, updated = import_bins(s, rows)
    engine.dispose()
    print(f"imported {len(rows)} bins from {args.file}: {created} new, {updated} updated", file=sys.stderr)
    return 0


def migrate(args: argparse.Namespace) -> int:
    from binsight.server.db.engine import make_engine
    from binsight.server.db.migrate import current_revision, upgrade

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    before = upgrade(engine)
    after = current_revision(engine)
    engine.dispose()
    print(f"database at revision {after} (was {before or 'empty'})", file=sys.stderr)
    return 0


def prune_images(args: argparse.Namespace) -> int:
    from binsight.server.db.dialect import is_sqlite
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade
    from binsight.server.retention import prune_images as prune
    from binsight.server.retention import sqlite_space, vacuum_sqlite

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    upgrade(engine)
    try:
        result = prune(make_sessionmaker(engine), config.retention, dry_run=args.dry_run)
        print(result.summary(config.retention))
        for bin_id, n in sorted(result.per_bin.items()):
            print(f"  {bin_id}: {n}")
        if is_sqlite(engine):
            size, free = sqlite_space(engine)
            print(
                f"SQLite file {size / 1e6:.1f} MB, {free / 1e6:.1f} MB of it free pages (reused by new rows)"
            )
            if args.vacuum and not args.dry_run:
                after = vacuum_sqlite(engine)
                print(f"VACUUM: file now {after / 1e6:.1f} MB")
        elif args.vacuum:
            print(
                "PostgreSQL: autovacuum makes the space reusable; only VACUUM FULL images (exclusive lock) "
                "gives it back to the operating system",
                file=sys.stderr,
            )
    finally:
        engine.dispose()
    return 0


def export_labels(args: argparse.Namespace) -> int:
    """The labelled set as a folder training reads (``--from-server DIR``): never the database itself."""
    from binsight.server.db.engine import make_engine, make_sessionmaker
    from binsight.server.db.migrate import upgrade
    from binsight.server.labels import export_folder

    config = load_server_config(args.config)
    engine = make_engine(config.database)
    try:
        upgrade(engine)
        with make_sessionmaker(engine)() as s:
            context = export_folder(s, Path(args.out), config.models.dir)
    finally:
        engine.dispose()
    active = context["active"]["version"] if context["active"] else "none"
    print(
        f"exported {context['labels']} labelled images to {args.out} (active model: {active})",
        file=sys.stderr,
    )
    return 0
