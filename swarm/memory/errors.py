"""Errors of the memory engine. Each carries a one-line message that names the problem."""

from __future__ import annotations


class MemoryEngineError(Exception):
    """Base class of every error the memory engine raises on purpose."""


class StoreError(MemoryEngineError):
    """The store cannot be opened or used."""


class CorruptStoreError(StoreError):
    """The file is damaged: not a readable SQLite database (truncated, pages damaged, not a
    database), a schema that is not a store's (a missing table or column), or a pattern row
    that fails its checks (a value of the wrong type or out of range, or content that no longer
    matches the row's body digest)."""


class StoreReadOnlyError(StoreError):
    """A write to a store that can only be read (opened with ``read_only=True``, or a file or
    directory this process cannot write); reads still work."""


class StoreFullError(StoreError):
    """A write did not fit: the disk is full, or SQLite's page limit was reached. The write was
    rolled back; every earlier commit is intact."""


class StoreLockedError(StoreError):
    """Another connection held the store's lock for longer than the busy timeout (a writer that
    does not commit, or a connection in exclusive locking mode); nothing was changed."""


class ForeignStoreError(StoreError):
    """The file is a valid SQLite database that belongs to something else."""


class SchemaVersionError(StoreError):
    """The store was written by a newer version of this software."""


class DimensionMismatchError(MemoryEngineError, ValueError):
    """An embedding does not have the store's dimension."""


class ImportValidationError(MemoryEngineError, ValueError):
    """A pattern file failed validation; nothing was imported."""


class LLMError(MemoryEngineError):
    """An LLM call failed or answered with something that is not a usable verdict."""


class MissingAPIKeyError(LLMError):
    """No API key was given and none is set in the environment."""
