"""Document bytes of the embedded store, kept in append-only segment files beside the
database; a row of the database says where (segment, offset, length).

Kept in the database, a filed CDA (often 100 KiB or more) would be written three times:
into the WAL at COMMIT (dozens of frames, two system calls each), then read back and
written again into the database file by the checkpoint, a sizeable share of a filing's
CPU (benchmarks/RESULTS.md). Here the bytes are written once, by one `pwrite` at the end
of a segment.

- Durable before referenced: the bytes are written before the group that refers to them
  is applied, and synced before that group's COMMIT (`sync`, called by the group writer).
  A committed row never points at bytes that are not on disk, also when the kernel writes
  the WAL back on its own before the syncer does.
- Nothing visible half-written: a group that fails leaves its bytes unreferenced, as
  unused space in a segment, never as a document.
- One writer per file: each store (each process of `serve --workers N`, `dmp-fhir import`)
  appends to a segment it created under a random name, so no two processes write the same
  file; any process reads any segment. A segment takes no more appends past 1 GiB.
- Erasure: once a purge is durable, the purged bytes' disk blocks are given back (a hole
  punched in the segment; zeros written where the system cannot).
- Backups: copy the database first (online backup), then the folder, with no purge
  (`dmp-fhir housekeeping`) in between. Segments only grow and only a purge erases, so
  such a folder holds every byte that copy of the database refers to.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fhir_server.storage.port import StoreUnavailable

SEGMENT_LIMIT = 1 << 30  # bytes: the next append starts a new segment
SUFFIX = ".seg"
_NAME = re.compile(r"[0-9a-f]{32}\.seg")
# segments kept open for reading; past this, a read opens and closes its segment
_OPEN_READERS = 64


@dataclass(frozen=True)
class Location:
    segment: str
    offset: int
    length: int


class Segments:
    """The segments of one database folder, as one store (one process) uses them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()  # the segment being appended to, and its end
        # held while syncing: a segment is not closed under a sync of it
        self._sync_lock = threading.Lock()
        self._fd: int | None = None
        self._name = ""
        self._end = 0
        self._synced = 0
        self._readers: dict[str, int] = {}
        self._readers_lock = threading.Lock()

    # -- writing -------------------------------------------------------------------------

    def append(self, data: bytes) -> Location:
        """Write `data` at the end of this store's segment; durable after the next `sync`."""
        with self._lock:
            if self._fd is not None and self._end + len(data) <= SEGMENT_LIMIT:
                return self._append(data)
        # a new segment (the first, or the current one is full): the locks are taken in
        # the order `sync` takes them, and no sync runs while the old segment is closed
        with self._sync_lock, self._lock:
            if self._fd is None or self._end + len(data) > SEGMENT_LIMIT:
                try:
                    self._start_segment()
                except OSError as exc:
                    raise StoreUnavailable(
                        f"SQLite: cannot start a document segment: {exc}"
                    ) from exc
            return self._append(data)

    def _append(self, data: bytes) -> Location:
        """Under `_lock`."""
        assert self._fd is not None
        offset = self._end
        try:
            _write_all(self._fd, data, offset)
        except OSError as exc:  # a disk full: the next append writes over what got in
            raise StoreUnavailable(f"SQLite: writing the document bytes failed: {exc}") from exc
        self._end += len(data)
        return Location(self._name, offset, len(data))

    def sync(self) -> None:
        """Make every byte appended so far durable (before a COMMIT that may refer to them)."""
        with self._sync_lock:
            with self._lock:
                fd, upto = self._fd, self._end
            if fd is None or upto <= self._synced:
                return
            try:
                os.fdatasync(fd)
            except OSError as exc:
                raise StoreUnavailable(f"SQLite: syncing the document bytes failed: {exc}") from exc
            # no new segment meanwhile: starting one takes `_sync_lock`
            self._synced = upto

    def _start_segment(self) -> None:
        """Under `_sync_lock` and `_lock`: close the current segment (synced first: a
        COMMIT may refer to its last bytes) and open a new one."""
        if self._fd is not None:
            os.fdatasync(self._fd)
            os.close(self._fd)
            self._fd = None
        if not self.folder.is_dir():
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)  # health data
            _sync_directory(self.folder.parent)
        name = uuid.uuid4().hex + SUFFIX
        fd = os.open(self.folder / name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        # the file's name, not only its bytes, must survive a power loss
        _sync_directory(self.folder)
        self._fd, self._name, self._end, self._synced = fd, name, 0, 0

    def erase(self, where: Location) -> None:
        """Bytes no row refers to any more: their disk blocks given back (a hole punched,
        read as zeros) where the system can, else overwritten with zeros; durably."""
        fd = os.open(self._path(where.segment), os.O_WRONLY)
        try:
            if not _punch_hole(fd, where.offset, where.length):
                zeros = bytes(min(where.length, 1 << 20))
                for start in range(0, where.length, len(zeros) or 1):
                    _write_all(fd, zeros[: where.length - start], where.offset + start)
            os.fdatasync(fd)
        finally:
            os.close(fd)

    # -- reading -------------------------------------------------------------------------

    def read(self, where: Location) -> bytes:
        with self._readers_lock:
            fd = self._readers.get(where.segment)
            if fd is None and len(self._readers) < _OPEN_READERS:
                fd = self._readers[where.segment] = self._open_reader(where.segment)
        if fd is not None:
            return self._read_at(fd, where)
        fd = self._open_reader(where.segment)
        try:
            return self._read_at(fd, where)
        finally:
            os.close(fd)

    def _open_reader(self, segment: str) -> int:
        try:
            return os.open(self._path(segment), os.O_RDONLY)
        except OSError as exc:
            raise StoreUnavailable(f"SQLite: document segment {segment}: {exc}") from exc

    @staticmethod
    def _read_at(fd: int, where: Location) -> bytes:
        parts, got = [], 0
        while got < where.length:
            try:
                part = os.pread(fd, where.length - got, where.offset + got)
            except OSError as exc:  # a disk error: a 503, as for the database
                raise StoreUnavailable(f"SQLite: document segment {where.segment}: {exc}") from exc
            if not part:
                raise StoreUnavailable(
                    f"SQLite: document segment {where.segment} ends before byte "
                    f"{where.offset + where.length}"
                )
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _path(self, segment: str) -> Path:
        if not _NAME.fullmatch(segment):  # names come from the database: never a path
            raise StoreUnavailable(f"SQLite: not a document segment name: {segment!r}")
        return self.folder / segment

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # its bytes were synced before any COMMIT using them
                self._fd = None
        with self._readers_lock:
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()


# fallocate(2) modes (Linux): free the blocks of a range, the file keeping its size
_PUNCH_HOLE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's fallocate(2), looked up once; None off Linux or where libc lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    return fallocate  # type: ignore[no-any-return]


def _punch_hole(fd: int, offset: int, length: int) -> bool:
    """Whether the range now reads as zeros with its blocks freed (Linux ext4, XFS,
    Btrfs, tmpfs); False where fallocate or hole punching is not available."""
    fallocate = _fallocate()
    return fallocate is not None and fallocate(fd, _PUNCH_HOLE, offset, length) == 0


def _sync_directory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written
