"""The embedded store's one writer: group commit, with the work split between two threads.

Batches queued while a transaction is being made durable share the next transaction (one
fsync for the group); every caller is answered once the transaction holding its batch is
durable. One batch's failure touches no other: a group is applied without savepoints (a
savepoint copies every page the batch touches that the group dirtied before, and a
filing touches dozens), and should a batch fail (a duplicate, a version conflict) the
transaction is rolled back and the group applied again with each batch in a savepoint of
its own.

Applying a group (its INSERTs: many short statements per filing) runs on the event loop
thread that queued it: from a second thread, each statement would have to win the GIL back
from the loop, and applying a filing would take many times its SQLite work. The COMMIT (WAL write and fsync, no Python) runs on the writer thread, so the
loop serves other requests while the disk works, and what they queue forms the next group.

Checkpoints (copying the WAL back into the database file, and syncing it) run on a thread
of their own, off that path: inside a COMMIT, the group that crossed the threshold paid for
the whole copy. The automatic checkpoint stays as a backstop at a much larger WAL size.

Durability (synchronous FULL) is made outside the write lock: connections run with
`synchronous=NORMAL` (a COMMIT writes the WAL without syncing it) and a syncer thread
`fdatasync`s the WAL after each COMMIT, answering the groups committed before the sync
began. A group's callers are answered only once their frames are on disk, as FULL would do,
but the next group (or the other process) commits while the disk works, and one sync covers
every group committed meanwhile. Checkpoints sync the WAL before copying it under NORMAL as
under FULL, so a frame copied and reused before the syncer reached it is on disk already.

Processes sharing the file (`serve --workers N`, `dmp-fhir import` beside a server) take
turns through a lock on a side file: a waiting process is woken the moment the other one
commits, where SQLite's own busy handler would poll it with sleeps of 1 to 100 ms. A writer
outside this scheme (an `sqlite3` shell holding the database) is waited for by SQLite's
busy timeout, on the event loop: do not write to a live server's file by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fhir_server.storage.port import StoreUnavailable

T = TypeVar("T")

# WAL size (pages) at which a COMMIT checkpoints by itself, should the checkpointer lag
BACKSTOP_CHECKPOINT_PAGES = 16384  # 64 MiB of 4 KiB pages
# the checkpointer runs at most this often (seconds): each run copies what has accumulated
CHECKPOINT_INTERVAL_S = 0.2

# A job applies one batch inside the open transaction: (result, None), or (None, error)
# for an error of that batch alone; raising aborts the group. Called with isolated=False
# a failed job may leave part of its writes (the group is then applied again); with
# isolated=True it must leave none (its savepoint rolled back).
Outcome = tuple[Any, BaseException | None]
Job = Callable[[sqlite3.Connection, bool], Outcome]
Queued = tuple[Job, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller went away (cancelled request)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _failure(exc: BaseException) -> BaseException:
    return StoreUnavailable(f"SQLite: {exc}") if isinstance(exc, sqlite3.Error) else exc


class Checkpointer:
    """Copies the WAL into the database file after commits, on its own connection and
    thread (PASSIVE: never waits for readers or the writer). The thread alone opens and
    closes that connection: closing it from elsewhere mid-checkpoint would crash SQLite."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                self._wanted.wait()
                if self._stopping.is_set():
                    return
                self._wanted.clear()
                if conn is None:
                    conn = self._connect()
                with contextlib.suppress(sqlite3.Error):  # busy or failed: the next one will
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                self._stopping.wait(CHECKPOINT_INTERVAL_S)
        finally:
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()


class WalSyncer:
    """Answers committed groups once the WAL holding them is synced to disk."""

    def __init__(self, wal_path: str, answer: Callable[[list[Queued], list[Outcome]], None]):
        self._wal_path = wal_path
        self._answer = answer
        self._fd: int | None = None
        self._ready = threading.Condition()
        self._committed: list[tuple[list[Queued], list[Outcome]]] = []
        self._stopping = False
        self.on_synced: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-sync", daemon=True)
        self._thread.start()

    def submit(self, group: list[Queued], outcomes: list[Outcome]) -> None:
        with self._ready:
            if not self._stopping:
                self._committed.append((group, outcomes))
                self._ready.notify()
                return
        # a COMMIT that ended while the store closes: its callers still get their answer
        fd = self._open_wal()
        try:
            self._settle([(group, outcomes)], fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def stop(self) -> None:
        with self._ready:
            self._stopping = True
            self._ready.notify()
        self._thread.join(timeout=10)
        if self._fd is not None and self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None

    def _open_wal(self) -> int:
        """The WAL (it exists once a COMMIT wrote it), or -1: the sync then fails, and the
        groups waiting on it are answered 503 rather than left waiting."""
        try:
            return os.open(self._wal_path, os.O_RDONLY)
        except OSError:
            return -1

    def _settle(self, batch: list[tuple[list[Queued], list[Outcome]]], fd: int) -> None:
        """Sync the WAL (covering every group committed before), then answer the batch."""
        failure: BaseException | None = None
        try:
            if fd < 0:
                raise FileNotFoundError(f"cannot open {self._wal_path}")
            os.fdatasync(fd)
        except OSError as exc:  # committed, but not known to be on disk: not acknowledged
            failure = StoreUnavailable(f"SQLite: syncing the WAL failed: {exc}")
        for group, outcomes in batch:
            self._answer(group, outcomes if failure is None else [(None, failure)] * len(group))

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._committed and not self._stopping:
                    self._ready.wait()
                if not self._committed:
                    return
                batch, self._committed = self._committed, []
            if self._fd is None or self._fd < 0:
                self._fd = self._open_wal()
            self._settle(batch, self._fd)
            if self.on_synced is not None:
                self.on_synced()


def _apply_jobs(
    conn: sqlite3.Connection, group: list[Queued], *, isolated: bool
) -> list[Outcome] | None:
    """Every job's outcome; None as soon as one fails when not isolated."""
    outcomes = []
    for job, _, _ in group:
        outcome = job(conn, isolated)
        if outcome[1] is not None and not isolated:
            return None
        outcomes.append(outcome)
    return outcomes


class GroupWriter:
    def __init__(self, turn_path: str | None) -> None:
        self.conn: sqlite3.Connection | None = None
        self.checkpointer: Checkpointer | None = None
        # set when COMMIT does not sync by itself (NORMAL) and FULL durability is wanted
        self.syncer: WalSyncer | None = None
        # run on the writer thread just before each COMMIT (document bytes made durable)
        self.before_commit: Callable[[], None] | None = None
        self._turn_path = turn_path
        self._turn_fd: int | None = None
        self._exec = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._lock = threading.Lock()
        self._pending: list[Queued] = []
        # one group at a time is applied then committed; whoever sets this drives the next
        self._busy = False

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self, setup: Callable[[], sqlite3.Connection]) -> None:
        def go() -> None:
            if self._turn_path is not None:
                self._turn_fd = os.open(self._turn_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._take_turn()
            try:
                self.conn = setup()
            finally:
                self._release_turn()

        await asyncio.get_running_loop().run_in_executor(self._exec, go)

    def close(self) -> None:
        if self.syncer is not None:
            self.syncer.stop()  # answers what was committed before closing
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self._exec.shutdown(wait=False)
        if self._turn_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._turn_fd)
            self._turn_fd = None

    # -- the turn between processes ------------------------------------------------------

    def _try_turn(self) -> bool:
        if self._turn_fd is None:
            return True
        try:
            fcntl.flock(self._turn_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _take_turn(self) -> None:
        if self._turn_fd is not None:
            fcntl.flock(self._turn_fd, fcntl.LOCK_EX)

    def _release_turn(self) -> None:
        if self._turn_fd is not None:
            fcntl.flock(self._turn_fd, fcntl.LOCK_UN)

    # -- groups --------------------------------------------------------------------------

    async def run(self, job: Job) -> Any:
        """Apply `job` in the next group; its result once that group is durable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._pending.append((job, future, loop))
            start = not self._busy
            self._busy = True
        if start:
            # after the callbacks already due on this loop: the requests they carry reach
            # their own commit first and share this group. Applied at once, most groups
            # would hold a single filing (commits do not wait for the disk), each paying
            # for its own pages written to the WAL.
            loop.call_soon(self._begin)
        return await future

    def read_while_idle(self, fn: Callable[[sqlite3.Connection], T]) -> tuple[bool, T | None]:
        """Run the read `fn` on the writer's connection if no group is open on it (none
        pending, applied or committing), holding off new groups meanwhile: (True, its
        result). Else (False, None): the caller reads on a connection of its own. Outside
        a group the connection is in autocommit, so `fn` reads only committed data."""
        with self._lock:
            conn = self.conn
            if self._busy or conn is None or conn.in_transaction:
                return False, None
            # `run` and `_next` take the lock before they start a group
            return True, fn(conn)

    def _begin(self) -> None:
        if self._try_turn():
            self._apply_group()
        else:  # another process is writing: wait for it off the event loop
            self._exec.submit(self._turn_then_hand_over)

    def _apply_group(self) -> None:
        """On an event loop thread, holding the turn: apply the queued jobs in one open
        transaction, then hand the COMMIT to the writer thread."""
        with self._lock:
            group, self._pending = self._pending, []
        conn = self.conn
        try:
            assert conn is not None, "store not open"
            conn.execute("BEGIN IMMEDIATE")
            outcomes = _apply_jobs(conn, group, isolated=False)
            if outcomes is None:  # a batch failed, maybe half-written: again, isolated
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
                outcomes = _apply_jobs(conn, group, isolated=True)
                assert outcomes is not None
        except BaseException as exc:  # the group as a whole cannot commit
            if conn is not None and conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            self._release_turn()
            self.answer(group, [(None, _failure(exc))] * len(group))
            self._exec.submit(self._next)
            return
        self._exec.submit(self._commit, group, outcomes)

    def _commit(self, group: list[Queued], outcomes: list[Outcome]) -> None:
        """On the writer thread: commit the group, have it answered once durable, start
        the next."""
        conn = self.conn
        assert conn is not None
        committed = True
        try:
            if self.before_commit is not None:
                self.before_commit()
            conn.execute("COMMIT")
        except BaseException as exc:
            committed = False
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            outcomes = [(None, _failure(exc))] * len(group)
        self._release_turn()
        if committed and self.syncer is not None:
            self.syncer.submit(group, outcomes)  # answered once the WAL is on disk
        else:  # COMMIT synced by itself (or failed): answer now
            if self.checkpointer is not None:
                self.checkpointer.poke()
            self.answer(group, outcomes)
        self._next()

    def _next(self) -> None:
        """On the writer thread: end the run of groups, or start the next one."""
        with self._lock:
            if not self._pending:
                self._busy = False
                return
        self._turn_then_hand_over()

    def _turn_then_hand_over(self) -> None:
        """On the writer thread: wait for the turn, then have a loop apply the group."""
        self._take_turn()
        with self._lock:
            loops = list(dict.fromkeys(loop for _, _, loop in self._pending))
        for loop in loops:
            try:
                loop.call_soon_threadsafe(self._apply_group)
                return
            except RuntimeError:  # that loop is closed
                continue
        self._apply_group()  # no live loop left to do it: do it here

    @staticmethod
    def answer(group: list[Queued], outcomes: list[Outcome]) -> None:
        for (_, future, loop), (result, error) in zip(group, outcomes, strict=True):
            with contextlib.suppress(RuntimeError):  # a closed loop has no one to answer
                loop.call_soon_threadsafe(_settle, future, result, error)
