"""Errors of the memory engine. Each carries a one-line message that names the problem."""

from __future__ import annotations


class MemoryEngineError(Exception):
    """Base class of every error the memory engine raises on purpose."""


class StoreError(MemoryEngineError):
    """The store cannot be opened or used."""


class CorruptStoreError(StoreError):
    """The file is not a readable SQLite database (damaged, truncated, or not a database)."""


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
