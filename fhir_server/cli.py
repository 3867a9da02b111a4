"""`dmp-fhir`: serve, and the operator commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from fhir_server.api.app import create_app
    from fhir_server.config import Settings

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "data_dir": args.data_dir,
            "mongodb_uri": args.mongodb_uri,
        }.items()
        if v is not None
    }
    settings = Settings(**overrides)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    import asyncio

    from fhir_server.config import Settings
    from fhir_server.importing import run

    overrides = {
        k: v
        for k, v in {"data_dir": args.data_dir, "mongodb_uri": args.mongodb_uri}.items()
        if v is not None
    }
    return asyncio.run(
        run(args.paths, settings=Settings(**overrides), url=args.url, labels=args.security_label)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dmp-fhir", description="DMP FHIR R4 server")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the FHIR server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.add_argument("--mongodb-uri", help="use MongoDB instead of the embedded SQLite store")
    serve.set_defaults(func=_serve)
    imp = sub.add_parser("import", help="file CDA documents (files or folders of *.xml)")
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--url", help="file into a running server at this FHIR base URL")
    imp.add_argument(
        "--security-label",
        action="append",
        default=[],
        metavar="CODE",
        help="masking code for every document: MASQUE_PS, INVISIBLE_PATIENT, "
        "INVISIBLE_REPRESENTANTS_LEGAUX (repeatable)",
    )
    imp.add_argument("--data-dir", type=Path, help="store of the in-process mode")
    imp.add_argument("--mongodb-uri", help="file into MongoDB (in-process mode)")
    imp.set_defaults(func=_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
