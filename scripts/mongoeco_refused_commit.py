"""Shows, with PyMongo alone, what mongoeco does with a transaction whose commit it refuses.

    .venv/bin/python scripts/mongoeco_refused_commit.py [.venv-mongo/bin/python]

Two transactions insert different documents; the second to commit is refused ("Write
conflict during transaction commit"). MongoDB aborts a transaction whose commit fails, and
the driver, following the sessions specification, sends nothing more for it and puts its
server session (lsid) back in its pool. mongoeco leaves the refused transaction open on
that lsid instead: every later operation the driver sends with it, reads outside any
transaction and new transactions alike, runs inside the refused transaction's snapshot.
So a read sees writes that were never committed (and misses what was), and a rerun of
the transaction meets its own refused writes as duplicates. Discarding the lsid (what the
driver does after a network error) keeps later operations out of it.

Exits 0 when mongoeco behaves so, 1 when it does not (the emulator was fixed).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError, OperationFailure

LAUNCHER = Path(__file__).with_name("mongoeco_server.py")


def ids(client: MongoClient, **kw: object) -> list[str]:
    return sorted(d["_id"] for d in client.probe.patient.find({}, **kw))


def refused_commit(client: MongoClient, a_id: str, b_id: str, *, discard: bool) -> Any:
    """Transactions A and B insert `a_id` and `b_id`; B commits first, so A's commit is
    refused. Returns A's lsid, or None when A's commit was accepted. With `discard`, the
    driver is told to drop A's lsid instead of pooling it."""
    patients = client.probe.patient
    with client.start_session() as a, client.start_session() as b:
        a.start_transaction()
        b.start_transaction()
        patients.insert_one({"_id": a_id}, session=a)
        patients.insert_one({"_id": b_id}, session=b)
        b.commit_transaction()
        try:
            a.commit_transaction()
            return None
        except OperationFailure as exc:
            print(f"A's commit refused: {exc.details}")
            if discard:
                a._server_session.mark_dirty()
            return a.session_id


def main(python: str) -> int:
    server = subprocess.Popen([python, str(LAUNCHER)], stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    uri = server.stdout.readline().strip()
    try:
        client, other = MongoClient(uri), MongoClient(uri)
        refused = refused_commit(client, "written-by-a", "written-by-b", discard=False)
        if refused is None:
            print("A's commit was accepted: no conflict to show")
            return 1
        print("stored, read by another client:", ids(other))
        with client.start_session() as s:
            print("next session reuses A's lsid:", s.session_id == refused)
            seen = ids(client, session=s)
        print("read outside any transaction on that lsid:", seen)
        phantom = seen == ["written-by-a"]
        with client.start_session() as s:
            s.start_transaction()
            try:
                client.probe.patient.insert_one({"_id": "written-by-a"}, session=s)
                print("rerun of A's insert in a new transaction: accepted")
            except DuplicateKeyError:
                print("rerun of A's insert in a new transaction: duplicate of its own write")
                phantom = True
            s.abort_transaction()  # an abort does end it on mongoeco too
        print("after an explicit abort on that lsid, a read sees:", ids(client))
        refused_commit(client, "written-by-c", "written-by-d", discard=True)
        print("A's lsid discarded after its refused commit; a read sees:", ids(client))
        print("stored, read by another client:", ids(other))
        return 0 if phantom else 1
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv-mongo/bin/python"))
