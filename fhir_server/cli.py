"""`dmp-fhir`: serve, and the operator commands (token, verify-audit, housekeeping,
import, reindex).

Every command works on one data directory: `--data-dir`, else DMP_FHIR_DATA_DIR, else
./data (`Settings.data_dir`). Only `serve` creates it; the other commands need the store and
key the server made there, and refuse an empty place rather than quietly work on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from fhir_server.config import Settings

T = TypeVar("T")


# command-line options that are settings: given, they win over DMP_FHIR_* variables
SETTING_OPTIONS = ("host", "port", "data_dir", "mongodb_uri", "auth", "workers")
POINT_ELSEWHERE = (
    "point the command at the server's data directory with --data-dir DIR or DMP_FHIR_DATA_DIR=DIR"
)


class MissingData(Exception):
    """What a command needs is not in the data directory it looked in."""


def _settings(args: argparse.Namespace) -> Settings:
    given = {name: getattr(args, name, None) for name in SETTING_OPTIONS}
    return Settings(**{name: value for name, value in given.items() if value is not None})


def _require_store(settings: Settings) -> None:
    if settings.mongodb_uri:
        return  # the store is a MongoDB database: nothing to find on disk
    if not settings.sqlite_path.is_file():
        raise MissingData(
            f"no store in {settings.data_dir.resolve()} ({settings.sqlite_path.name} not "
            f"found; `dmp-fhir serve` creates it): {POINT_ELSEWHERE}, or use MongoDB with "
            "--mongodb-uri or DMP_FHIR_MONGODB_URI"
        )


def _require_dev_key(settings: Settings) -> None:
    from fhir_server.auth.tokens import DEV_KEY_FILE

    if not (settings.data_dir / DEV_KEY_FILE).is_file():
        raise MissingData(
            f"no development issuer key in {settings.data_dir.resolve()} ({DEV_KEY_FILE} "
            f"not found; `dmp-fhir serve --auth dev` creates it): {POINT_ELSEWHERE}"
        )


async def _with_context(settings: Settings, job: Callable[[Any], Awaitable[T]]) -> T:
    from fhir_server.interactions.context import Context
    from fhir_server.storage.factory import make_store

    _require_store(settings)
    store = make_store(settings)
    await store.open()
    try:
        return await job(Context(store, settings))
    finally:
        await store.close()


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.api import processes
    from fhir_server.api.access_log import uvicorn_log_config
    from fhir_server.api.app import create_app

    settings = _settings(args)
    common = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "access_log": False,  # uvicorn's own: it would write query values
        "log_config": uvicorn_log_config(settings.log_level),
    }
    if settings.workers <= 1:
        uvicorn.run(create_app(settings), **common)
        return 0
    # several processes (SQLite WAL serves them; MongoDB scales out): each builds its app
    # from the environment, so the command line's settings travel there
    for field in SETTING_OPTIONS:
        value = getattr(settings, field)
        if value is not None:
            os.environ[f"DMP_FHIR_{field.upper()}"] = str(value)
    if processes.supported():  # one listening socket per process: connections spread evenly
        options = {k: v for k, v in common.items() if k not in ("host", "port")}
        return processes.serve(settings.host, settings.port, settings.workers, options)
    uvicorn.run(processes.APP, factory=True, workers=settings.workers, **common)
    return 0


def _token(args: argparse.Namespace) -> int:
    from fhir_server.auth.tokens import DevIssuer

    settings = _settings(args)
    _require_dev_key(settings)
    try:
        token = DevIssuer.load(settings.data_dir).mint_token(
            args.role,
            args.sub or f"{args.role}-{args.rpps or args.patient or args.organization or 'dev'}",
            rpps=args.rpps,
            profession=args.profession,
            organization=args.organization,
            patient=args.patient,
            ttl=args.ttl,
        )
    except (ValueError, PermissionError) as exc:  # a bad claim set, or an unsafe key file
        print(f"dmp-fhir token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def _verify_audit(args: argparse.Namespace) -> int:
    from fhir_server.operations.verify_audit import verify_audit

    report = asyncio.run(_with_context(_settings(args), lambda ctx: verify_audit(ctx.store)))
    if report.broken is None:
        print(f"audit chain intact: {report.checked} AuditEvents, head {report.head[:16]}…")
        return 0
    print(
        f"audit chain BROKEN at position {report.position} "
        f"(AuditEvent {report.event_id or '?'}): {report.broken.reason}: {report.broken.detail}; "
        f"{report.checked} events before it are intact"
    )
    return 1


def _housekeeping(args: argparse.Namespace) -> int:
    from fhir_server.operations.housekeeping import housekeeping

    report = asyncio.run(_with_context(_settings(args), housekeeping))
    print(f"embargo notices sent: {report.notices}")
    print(f"records destroyed after ten years: {len(report.destroyed)}")
    for pid in report.destroyed:
        print(f"  Patient/{pid}")
    return 0


def _reindex(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from fhir_server.operations.reindex import reindex

    settings = _settings(args)
    _require_store(settings)  # before the progress bar takes the terminal
    with Progress(transient=True) as bar:
        tasks: dict[str, Any] = {}

        def progress(rtype: str, n: int) -> None:
            if rtype not in tasks:
                tasks[rtype] = bar.add_task(rtype, total=None)
            bar.advance(tasks[rtype], n)

        try:
            report = asyncio.run(
                _with_context(settings, lambda ctx: reindex(ctx.store, args.type, progress))
            )
        except ValueError as exc:
            print(f"dmp-fhir reindex: {exc}", file=sys.stderr)
            return 2
    for rtype, n in report.reindexed.items():
        print(f"{rtype}: {n} reindexed")
    print(f"total: {report.total} resources reindexed")
    return 0


DATA_DIR_HELP = "the server's data directory (default: $DMP_FHIR_DATA_DIR, else ./data)"


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    parser.add_argument("--mongodb-uri", help="use MongoDB instead of the embedded SQLite store")


def _import(args: argparse.Namespace) -> int:
    from fhir_server.importing import run

    settings = _settings(args)
    if args.url is None:  # in process: into the server's store
        _require_store(settings)
    return asyncio.run(
        run(
            args.paths,
            settings=settings,
            url=args.url,
            labels=args.security_label,
            token=args.token or os.environ.get("DMP_FHIR_TOKEN"),
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmp-fhir", description="DMP FHIR R4 server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--auth", choices=["dev", "oidc", "none"])
    serve.add_argument("--workers", type=int, help="server processes (default 1)")
    _store_options(serve)
    serve.set_defaults(func=_serve)

    token = sub.add_parser("token", help="mint a token from the local development issuer")
    token.add_argument("--role", required=True)
    token.add_argument("--sub")
    token.add_argument("--rpps")
    token.add_argument("--profession")
    token.add_argument("--organization", help="FINESS of the establishment")
    token.add_argument("--patient", help="Patient id a patient / legal representative acts for")
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP)
    token.set_defaults(func=_token)

    verify = sub.add_parser("verify-audit", help="check the tamper-evident audit chain")
    _store_options(verify)
    verify.set_defaults(func=_verify_audit)

    house = sub.add_parser("housekeeping", help="send due notices, destroy expired records")
    _store_options(house)
    house.set_defaults(func=_housekeeping)
    imp = sub.add_parser("import", help="file CDA documents (files or folders of *.xml)")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--url", help="file into a running server at this FHIR base URL")
    imp.add_argument(
        "--token", help="bearer token for --url (default: $DMP_FHIR_TOKEN); see `dmp-fhir token`"
    )
    imp.add_argument(
        "--security-label",
        action="append",
        default=[],
        metavar="CODE",
        help="masking code for every document: MASQUE_PS, INVISIBLE_PATIENT, "
        "INVISIBLE_REPRESENTANTS_LEGAUX (repeatable)",
    )
    imp.add_argument("--data-dir", type=Path, help=DATA_DIR_HELP + "; in-process mode")
    imp.add_argument("--mongodb-uri", help="file into MongoDB (in-process mode)")
    imp.set_defaults(func=_import)

    reidx = sub.add_parser(
        "reindex", help="recompute the search index of every resource (after an upgrade)"
    )
    reidx.add_argument(
        "--type", action="append", metavar="TYPE", help="only this resource type (repeatable)"
    )
    _store_options(reidx)
    reidx.set_defaults(func=_reindex)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MissingData as exc:
        print(f"dmp-fhir {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
