"""A lock-free check that no connection has committed to a WAL-mode SQLite file since a moment seen.

SQLite answers ``PRAGMA data_version`` by opening a read transaction, which takes and drops a lock
on the WAL index (``fcntl`` calls): 12 us of a decision at 10k patterns on the development
machine, where it was the decision's only statement. The WAL index header (the first 96 bytes of
the ``-shm`` file: two copies of ``WalIndexHdr``, https://sqlite.org/walformat.html) changes with
every commit of any connection: ``mxFrame`` (the last committed frame) grows, or the WAL restarts
under new salts, and ``iChange`` counts transactions. One ``pread`` of it (0.5 us) therefore tells
"nothing committed since" for certain; any other answer is left to the PRAGMA. SQLite's API has
no call that skips the lock, and no library reads the header, so this is done by hand.

The watch is trusted only once it has seen one of its own connection's commits change the
header: a file that is not the live WAL index (another VFS, a path SQLite resolved otherwise)
never changes, so it is never trusted, and costs only the PRAGMA it failed to save.
"""

from __future__ import annotations

import os

#: Both copies of the WAL index header (``WalIndexHdr``, 48 bytes each): SQLite writes the
#: second and then the first, so a read that races a commit differs from the header before it.
HEADER_BYTES = 96


class WalWatch:
    """Reads the WAL index header of the database at ``db_path``; see the module docstring."""

    def __init__(self, db_path: str) -> None:
        self._shm = os.path.realpath(db_path) + "-shm"
        self._fd: int | None = None
        self.trusted = False
        #: True once the header could not be read, or an own commit left it unchanged: never trusted
        self.failed = not hasattr(os, "pread")

    def header(self) -> bytes | None:
        """The header as it stands now; None when there is no readable WAL index."""
        if self.failed:
            return None
        try:
            if self._fd is None:
                self._fd = os.open(self._shm, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            header = os.pread(self._fd, HEADER_BYTES, 0)
        except OSError:
            self.failed = True
            return None
        return header if len(header) == HEADER_BYTES else None

    def mark(self) -> bytes | None:
        """The header, once trusted (None before): equal to a mark taken earlier only if no
        connection has committed in between."""
        return self.header() if self.trusted else None

    def own_commit(self, before: bytes | None, after: bytes | None) -> None:
        """The header read just before and just after a commit of this connection that changed
        rows (so wrote WAL frames): trusted if it changed, never trusted if it did not."""
        if before is None or after is None:
            return
        if after == before:
            self.failed = True
            self.trusted = False
        elif not self.failed:
            self.trusted = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.trusted = False
        self.failed = True
