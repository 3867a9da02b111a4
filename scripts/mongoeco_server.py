"""Start a mongoeco wire-protocol server (a MongoDB emulator) and print its URI.

Run it with a Python 3.13 environment that has mongoeco installed (see scripts/test.sh):

    .venv-mongo/bin/python scripts/mongoeco_server.py [--port 0] [--sqlite PATH]

The first line on stdout is the connection string; the server runs until SIGTERM/SIGINT.
mongoeco 4.11 ships no command-line entry point, hence this launcher. Port 0 picks a free
loopback port; a fixed port lets a test stop the server and start it again at the same
address (the app's client must then reconnect by itself).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys


def build_engine(sqlite_path: str | None) -> object:
    if sqlite_path:
        from mongoeco.engines.sqlite import SQLiteEngine

        # a file-backed engine keeps data across a stop/start, for the restart tests
        return SQLiteEngine(sqlite_path)
    from mongoeco.engines.memory import MemoryEngine

    return MemoryEngine()


async def serve(host: str, port: int, sqlite_path: str | None) -> None:
    from mongoeco.wire.proxy import AsyncMongoEcoProxyServer

    server = AsyncMongoEcoProxyServer(engine=build_engine(sqlite_path), host=host, port=port)
    address = await server.start()
    print(address.uri, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--sqlite", help="file for mongoeco's SQLite engine (default: memory)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.sqlite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
