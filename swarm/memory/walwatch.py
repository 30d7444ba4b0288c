"""A lock-free check that no connection has committed to a WAL-mode SQLite file since a moment seen.

SQLite answers ``PRAGMA data_version`` by opening a read transaction, which takes and drops a lock
on the WAL index (``fcntl`` calls): 12 us of a decision at 10k patterns on the development
machine, where it was the decision's only statement. The WAL index header (the first 96 bytes of
the ``-shm`` file: two copies of ``WalIndexHdr``, https://sqlite.org/walformat.html) changes with
every commit of any connection: ``iChange`` counts transactions, ``mxFrame`` (the last committed
frame) and the frame checksums move, and a WAL restart draws new salts. SQLite's own
``data_version`` comes from the same comparison. One ``pread`` of it (0.5 us) therefore tells
"nothing committed since" for certain; any other answer is left to the PRAGMA. SQLite's API has
no call that skips the lock, and no library reads the header, so this is done by hand.

The header is read through SQLite's own descriptor of the ``-shm`` file, found once in
``/proc/self/fd`` by device and inode (so Linux only; elsewhere the PRAGMA always runs), and
only when it is the one descriptor of that file; a header whose two copies differ (a commit
writing it) or that does not name the WAL index format sends the store to the PRAGMA. Opening
a descriptor of our own would not do: SQLite locks that file with POSIX record locks, and
closing any descriptor of a file drops every such lock the process holds on it, other
connections' included (SQLite's "How To Corrupt" page, 2.2). SQLite keeps its descriptor open
while any of this process's connections to the file is, so it is valid for as long as the
store's connection is open; the watch never closes it.
"""

from __future__ import annotations

import os

#: Both copies of the WAL index header (``WalIndexHdr``, 48 bytes each): SQLite writes the
#: second and then the first, so a read that races a commit differs from the header before it.
HEADER_BYTES = 96

_OPEN_FILES = "/proc/self/fd"

#: ``iVersion`` of a WAL index header (3007000), as either byte order writes it (native order)
_WAL_INDEX_VERSIONS = (3007000).to_bytes(4, "little"), (3007000).to_bytes(4, "big")


def open_descriptors(path: str) -> list[int] | None:
    """The descriptors this process holds open on the file at ``path``, matched by device and
    inode (so a hard link or another name of it counts, and a file replaced under that name does
    not); None when the file is missing or the system does not list open files."""
    try:
        want = os.stat(path)
        names = os.listdir(_OPEN_FILES)
    except OSError:
        return None
    found = []
    for name in names:
        try:
            st = os.stat(f"{_OPEN_FILES}/{name}")  # the open file itself, even if unlinked
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                found.append(int(name))
        except (OSError, ValueError):
            continue
    return found


class WalWatch:
    """Reads the WAL index header of the database at ``db_path``; see the module docstring."""

    def __init__(self, db_path: str) -> None:
        self._shm = os.path.realpath(db_path) + "-shm"
        self._fd: int | None = None
        #: True once SQLite's descriptor was looked for and not found, or could not be read
        self.failed = not hasattr(os, "pread")

    @property
    def attached(self) -> bool:
        """Whether the header can be read (SQLite's descriptor of the ``-shm`` file was found)."""
        return self._fd is not None

    def attach(self) -> bool:
        """Find SQLite's descriptor of the WAL index (once: a scan of this process's open files,
        so the store does it only when it reads while nothing is written)."""
        if self._fd is None and not self.failed:
            found = open_descriptors(self._shm)
            # exactly one: SQLite keeps one per file and process; a second (code of another
            # kind holding the file open) might be closed and its number reused for another file
            self._fd = found[0] if found is not None and len(found) == 1 else None
            self.failed = self._fd is None
        return self._fd is not None

    def mark(self) -> bytes | None:
        """The header now (None: not attached, or unreadable): equal to a mark taken earlier only
        if no connection has committed in between."""
        if self._fd is None:
            return None
        try:
            header = os.pread(self._fd, HEADER_BYTES, 0)
        except OSError:
            self.detach()
            return None
        half = HEADER_BYTES // 2
        if header[:half] != header[half:] or header[:4] not in _WAL_INDEX_VERSIONS:
            return None  # a commit writing it as we read, or not a WAL index: ask SQLite
        return header

    def detach(self) -> None:
        """Stop reading the header (the store is closing). The descriptor is SQLite's: left open."""
        self._fd = None
        self.failed = True
