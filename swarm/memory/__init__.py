"""ReasoningBank memory: patterns distilled from judged trajectories, stored and searched by meaning.

Typical use::

    from swarm.memory import ReasoningBank
    bank = ReasoningBank.open("bank.db")
    bank.store_pattern("momentum in strong trends", "buy breakouts...", action="momentum")
    rec = bank.recommend("strong uptrend, low volatility")
"""

from .bank import Evidence, LearnResult, Recommendation, ReasoningBank, SettingHint, consolidate_store
from .client import CachedBankClient
from .consolidate import ConsolidationPolicy, ConsolidationReport
from .distill import Distiller, LLMDistiller, RuleDistiller
from .embedders import ContextEmbedder, Embedder, HashingTextEmbedder
from .errors import (
    CorruptStoreError,
    DimensionMismatchError,
    ForeignStoreError,
    ImportValidationError,
    LLMError,
    MemoryEngineError,
    MissingAPIKeyError,
    SchemaVersionError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreReadOnlyError,
)
from .index import VectorIndex
from .judge import Judge, LLMJudge, OutcomeJudge
from .llm import AnthropicClient, ChatClient, OpenAIChatClient
from .models import Pattern, Source, Step, Trajectory, Verdict, apply_outcome, make_pattern_id, merge
from .retrieval import ScoreWeights, SearchHit, composite_score, mmr, rank
from .store import Neighbours, PatternStore
from .transfer import ImportLimits, ImportPolicy, ImportReport, export_patterns, import_patterns, read_patterns

__all__ = [
    "AnthropicClient",
    "CachedBankClient",
    "ChatClient",
    "ConsolidationPolicy",
    "ConsolidationReport",
    "ContextEmbedder",
    "CorruptStoreError",
    "DimensionMismatchError",
    "Distiller",
    "Embedder",
    "Evidence",
    "ForeignStoreError",
    "HashingTextEmbedder",
    "ImportLimits",
    "ImportPolicy",
    "ImportReport",
    "ImportValidationError",
    "Judge",
    "LLMDistiller",
    "LLMError",
    "LLMJudge",
    "LearnResult",
    "MemoryEngineError",
    "MissingAPIKeyError",
    "Neighbours",
    "OpenAIChatClient",
    "OutcomeJudge",
    "Pattern",
    "PatternStore",
    "ReasoningBank",
    "Recommendation",
    "RuleDistiller",
    "SchemaVersionError",
    "ScoreWeights",
    "SearchHit",
    "SettingHint",
    "Source",
    "Step",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreReadOnlyError",
    "Trajectory",
    "VectorIndex",
    "Verdict",
    "apply_outcome",
    "composite_score",
    "consolidate_store",
    "export_patterns",
    "import_patterns",
    "make_pattern_id",
    "merge",
    "mmr",
    "rank",
    "read_patterns",
]
