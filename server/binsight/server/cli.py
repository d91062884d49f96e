"""``binsight server ...``: argument parsing only."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("server", help="run the server and manage its data")
    ssub = p.add_subparsers(dest="server_command", metavar="ACTION")

    r = ssub.add_parser("run", help="ingest readings and serve the API and web page")
    r.add_argument("--config", required=True, help="server.toml")
    r.add_argument("--check", action="store_true", help="print the resolved config and exit (1 if bad)")
    r.set_defaults(func=_run)

    t = ssub.add_parser("token", help="API tokens")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION")
    tc = tsub.add_parser("create", help="create a token and print it alone on stdout")
    tc.add_argument("--role", required=True, choices=["operator", "labeller", "admin", "driver"])
    tc.add_argument("--config", required=True)
    tc.add_argument("--name", default=None, help="who or what the token is for")
    tc.add_argument("--truck", default=None, help="driver tokens: the truck whose manifest it opens")
    tc.set_defaults(func=_token_create)
    tl = tsub.add_parser("list", help="the tokens: id, name, role, truck, created, last used, revoked")
    tl.add_argument("--config", required=True)
    tl.add_argument("--all", action="store_true", help="include revoked tokens")
    tl.set_defaults(func=_token_list)
    tr = tsub.add_parser("revoke", help="revoke a token by id (`token list`): refused from then on")
    tr.add_argument("id", type=int)
    tr.add_argument("--config", required=True)
    tr.set_defaults(func=_token_revoke)

    b = ssub.add_parser("bins", help="the bins the server knows")
    bsub = b.add_subparsers(dest="bins_command", metavar="ACTION")
    bi = bsub.add_parser("import", help="import bins from CSV (bin_id,lat,lon,capacity_l,...) or GeoJSON")
    bi.add_argument("file")
    bi.add_argument("--config", required=True)
    bi.set_defaults(func=_bins_import)

    m = ssub.add_parser("migrate", help="bring the database schema up to date")
    m.add_argument("--config", required=True)
    m.set_defaults(func=_migrate)

    pi = ssub.add_parser("prune-images", help="delete old and surplus unlabelled images once ([retention])")
    pi.add_argument("--config", required=True)
    pi.add_argument("--dry-run", action="store_true", help="print what would be deleted; delete nothing")
    pi.add_argument(
        "--vacuum", action="store_true", help="SQLite: afterwards rewrite the file to give freed space back"
    )
    pi.set_defaults(func=_prune_images)

    el = ssub.add_parser(
        "export-labels",
        help="write the labelled set, the active model and the bins' sites to a folder for "
        "`binsight train fit --from-server DIR` (docs/retraining.md)",
    )
    el.add_argument("--config", required=True)
    el.add_argument("--out", required=True, help="folder: absent, empty, or an earlier export (replaced)")
    el.set_defaults(func=_export_labels)


def _run(args: argparse.Namespace) -> int:
    from binsight.server.commands import run

    return run(args)


def _token_create(args: argparse.Namespace) -> int:
    from binsight.server.commands import token_create

    return token_create(args)


def _token_list(args: argparse.Namespace) -> int:
    from binsight.server.commands import token_list

    return token_list(args)


def _token_revoke(args: argparse.Namespace) -> int:
    from binsight.server.commands import token_revoke

    return token_revoke(args)


def _bins_import(args: argparse.Namespace) -> int:
    from binsight.server.commands import bins_import

    return bins_import(args)


def _migrate(args: argparse.Namespace) -> int:
    from binsight.server.commands import migrate

    return migrate(args)


def _prune_images(args: argparse.Namespace) -> int:
    from binsight.server.commands import prune_images

    return prune_images(args)


def _export_labels(args: argparse.Namespace) -> int:
    from binsight.server.commands import export_labels

    return export_labels(args)
