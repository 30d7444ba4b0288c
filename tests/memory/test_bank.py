
import pytest

from swarm.memory.store import SCHEMA_VERSION
from swarm.memory import (
    CachedBankClient,
    ContextEmbedder,
    HashingTextEmbedder,
    ImportPolicy,
    ReasoningBank,
    Step,
    Trajectory,
)


class Clock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def bank():
    clock = Clock()
    b = ReasoningBank.open(":memory:", HashingTextEmbedder(256), agent="tester", clock=clock)
    b.clock_obj = clock
    return b


def _seed(bank):
    bank.store_pattern("ride trends", "buy strength", context="strong uptrend low volatility",
                       action="momentum", confidence=0.9, domain="trading")
    bank.store_pattern("fade extremes", "sell rips", context="choppy range bound market",
                       action="meanrev", confidence=0.8, domain="trading")
    bank.store_pattern("no momentum in chop", "it whipsaws", context="choppy range bound market",
                       kind="lesson", action="momentum", confidence=0.9, domain="trading")


def test_recommend_weighs_strategies_against_lessons(bank):
    _seed(bank)
    up = bank.recommend("strong uptrend with low volatility")
    assert up.action == "momentum" and up.confidence > 0.5
    assert any(e.kind == "strategy" and e.action == "momentum" for e in up.evidence)
    chop = bank.recommend("choppy range bound market")
    assert chop.action == "meanrev"
    assert dict(chop.scores)["momentum"] < 0  # the lesson outweighs the far-away strategy


def test_recommend_with_nothing_relevant_answers_none(bank):
    assert not bank.recommend("anything")
    bank.store_pattern("lesson only", "x", context="volatile crash", kind="lesson", action="momentum")
    rec = bank.recommend("volatile crash")
    assert rec.action is None and "against" in rec.reason


def test_learn_judges_distills_stores_and_outcomes_feed_back(bank):
    traj = Trajectory("t1", "tester", "strong uptrend low volatility", (Step("momentum", reward=1.0),),
                      reward=1.0, domain="trading")
    result = bank.learn(traj)
    assert result.verdict.success and len(result.patterns) == 1
    pid = result.patterns[0].id
    assert bank.search("strong uptrend", 1)[0].pattern.id == pid
    before = bank.store.get(pid).confidence
    bank.record_outcome(pid, success=False, reward=-1.0)
    after = bank.store.get(pid)
    assert after.confidence == pytest.approx(before + 0.1 * (0 - before))
    assert after.failures == 1 and after.last_used_at == bank.clock_obj.t


def test_search_mmr_diversifies(bank):
    for i in range(3):
        bank.store_pattern(f"trend {i}", "x", context="strong uptrend low volatility", action="momentum", id=f"dup{i}")
    bank.store_pattern("other", "x", context="strong uptrend high volatility", action="breakout", id="other")
    plain = [h.pattern.id for h in bank.search("strong uptrend low volatility", 2)]
    diverse = [h.pattern.id for h in bank.search("strong uptrend low volatility", 2, mmr_lambda=0.3)]
    assert plain[1].startswith("dup") and diverse[1] == "other"


def test_export_import_between_banks_and_stats(bank, tmp_path):
    _seed(bank)
    path = tmp_path / "pack.jsonl"
    assert bank.export(path, min_confidence=0.85) == 2
    other = ReasoningBank.open(tmp_path / "b.db", HashingTextEmbedder(256), clock=Clock(5.0))
    report = other.import_(path, ImportPolicy(mode="selective", min_confidence=0.5))
    assert report.imported == 2
    stats = other.stats()
    assert stats["patterns"] == 2 and stats["by_kind"] == {"lesson": 1, "strategy": 1}
    assert stats["index"] == "exact" and stats["schema_version"] == SCHEMA_VERSION and stats["bytes_on_disk"] > 0
    assert "ann_threshold" in stats["index_reason"] and stats["graph_rows_built"] == 0


def test_context_vectors_work_end_to_end():
    emb = ContextEmbedder(n_features=2, dim=128, seed=3)
    bank = ReasoningBank.open(":memory:", emb, clock=Clock())
    bank.store_pattern("up", "x", context=[1.0, 0.0], action="momentum", confidence=0.9)
    bank.store_pattern("down", "x", context=[-1.0, 0.0], action="meanrev", confidence=0.9)
    assert bank.recommend([0.9, 0.1]).action == "momentum"
    assert bank.recommend([-1.1, 0.0]).action == "meanrev"


def test_cached_client_caches_within_ttl_and_expires(bank):
    _seed(bank)
    clock = Clock(0.0)
    client = CachedBankClient(bank, ttl=10.0, clock=clock)
    first = client.recommend("strong uptrend low volatility")
    assert client.recommend("strong uptrend low volatility") is first
    assert (client.hits, client.misses) == (1, 1)
    bank.store_pattern("new fav", "x", context="strong uptrend low volatility", action="breakout", confidence=1.0)
    clock.t = 11.0
    assert client.recommend("strong uptrend low volatility") is not first
    assert client.misses == 2


def test_cached_client_without_a_bank_degrades_and_replays_outcomes(bank):
    _seed(bank)
    client = CachedBankClient(ttl=5.0, clock=Clock())
    rec = client.recommend("strong uptrend")
    assert rec.action is None and "no bank" in rec.reason
    assert client.search("strong uptrend") == []
    pid = bank.search("strong uptrend low volatility", 1)[0].pattern.id
    assert client.record_outcome(pid, True, 1.0) is False and client.pending_outcomes == 1
    assert client.connect(bank) == 1
    assert bank.store.get(pid).uses == 1
    assert client.recommend("strong uptrend low volatility").action == "momentum"
    client.disconnect()
    assert client.recommend("strong uptrend low volatility").action is None


def test_cached_client_survives_a_failing_bank(tmp_path):
    bank = ReasoningBank.open(tmp_path / "x.db", HashingTextEmbedder(64), clock=Clock())
    bank.store_pattern("a", "b", context="ctx", action="momentum")
    client = CachedBankClient(bank, clock=Clock())
    bank.close()  # every call now raises sqlite3.ProgrammingError inside the bank
    rec = client.recommend("ctx")
    assert rec.action is None and client.last_error and "ProgrammingError" in client.last_error
    assert client.record_outcome("whatever", True) is False and client.pending_outcomes == 1
