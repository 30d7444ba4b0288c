import base64
import json

import numpy as np
import pytest

from swarm.memory import Source, ImportLimits, ImportPolicy, ImportValidationError, PatternStore, export_patterns, import_patterns
from tests.conftest import make_pattern

DIM = 8


def _patterns():
    rng = np.random.default_rng(0)
    return [make_pattern(f"p{i}", rng.standard_normal(DIM), domain=("trading" if i % 2 else "ops"),
                         confidence=i / 10, uses=i, successes=i // 2, failures=i - i // 2,
                         source=Source("agent-a", f"t{i}", "success"))
            for i in range(10)]


def _snapshot(store):
    return sorted((p.id, p.version, p.digest()) for p in store)


@pytest.fixture
def exported(tmp_path):
    path = tmp_path / "pack.jsonl"
    assert export_patterns(_patterns(), path, DIM, now=1.0, origin="agent-a") == 10
    return path


def test_round_trip_keeps_fields_and_adds_provenance(exported):
    dst = PatternStore(":memory:", dim=DIM)
    report = import_patterns(dst, exported, now=2.0)
    assert (report.in_file, report.imported, report.filtered_out, report.kept_existing) == (10, 10, 0, 0)
    originals = {p.id: p for p in _patterns()}
    for p in dst:
        o = originals[p.id]
        assert np.array_equal(p.embedding, o.embedding)
        assert (p.confidence, p.uses, p.source, p.domain) == (o.confidence, o.uses, o.source, o.domain)
        assert p.provenance[-1] == {"event": "import", "file": "pack.jsonl", "origin": "agent-a", "at": 2.0}


def test_selective_import_by_domain_and_confidence(exported):
    dst = PatternStore(":memory:", dim=DIM)
    report = import_patterns(dst, exported, now=2.0,
                             policy=ImportPolicy(mode="selective", domains=("trading",), min_confidence=0.5))
    assert sorted(p.id for p in dst) == ["p5", "p7", "p9"]
    assert report.filtered_out == 7


def test_conflicts_merge_skip_replace(exported):
    dst = PatternStore(":memory:", dim=DIM)
    ours = _patterns()[3].bumped("us").bumped("us", confidence=0.99)  # version 3 beats the file's 1
    dst.add(ours)
    report = import_patterns(dst, exported, now=2.0)
    assert report.kept_existing == 1 and dst.get("p3").confidence == 0.99
    import_patterns(dst, exported, now=3.0, policy=ImportPolicy(on_conflict="replace"))
    assert dst.get("p3").confidence == pytest.approx(0.3)


def _rewrite(path, line_no, mutate):
    lines = path.read_text().splitlines()
    rec = json.loads(lines[line_no])
    mutate(rec)
    lines[line_no] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")


BAD = {
    "bad header": (0, lambda r: r.update(format="something-else"), "bad header"),
    "future version": (0, lambda r: r.update(version=99), "not supported"),
    "wrong dim in header": (0, lambda r: r.update(dim=16), "dimension"),
    "confidence out of range": (3, lambda r: r.update(confidence=1.3), "confidence"),
    "nan confidence": (3, lambda r: r.update(confidence=float("nan")), "confidence"),
    "negative uses": (3, lambda r: r.update(uses=-1), "uses"),
    "outcomes exceed uses": (3, lambda r: r.update(successes=50), "exceed uses"),
    "unknown kind": (3, lambda r: r.update(kind="rumour"), "kind"),
    "short embedding": (3, lambda r: r.update(embedding=base64.b64encode(b"\0" * 12).decode()), "dimensions"),
    "nan embedding": (3, lambda r: r.update(embedding=base64.b64encode(np.full(DIM, np.nan, "<f4").tobytes()).decode()), "non-finite"),
    "zero embedding": (3, lambda r: r.update(embedding=base64.b64encode(np.zeros(DIM, "<f4").tobytes()).decode()), "zeros"),
    "not base64": (3, lambda r: r.update(embedding="%%%"), "base64"),
    "tags not strings": (3, lambda r: r.update(tags=[1, 2]), "tags"),
    "missing title": (3, lambda r: r.pop("title"), "title"),
    "duplicate id": (3, lambda r: r.update(id="p0"), "duplicate"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_files_are_rejected_and_the_store_is_unchanged(exported, case):
    line, mutate, needle = BAD[case]
    _rewrite(exported, line, mutate)
    dst = PatternStore(":memory:", dim=DIM)
    dst.add(make_pattern("mine", np.ones(DIM)))
    before = _snapshot(dst)
    with pytest.raises(ImportValidationError) as err:
        import_patterns(dst, exported, now=2.0)
    msg = str(err.value)
    assert "pack.jsonl" in msg and needle in msg and "\n" not in msg
    if line:
        assert f"line {line + 1}" in msg
    assert _snapshot(dst) == before


def test_truncated_garbage_and_oversized_files(exported, tmp_path):
    dst = PatternStore(":memory:", dim=DIM)
    lines = exported.read_text().splitlines()
    exported.write_text("\n".join(lines[:5]) + "\n")
    with pytest.raises(ImportValidationError, match="truncated"):
        import_patterns(dst, exported, now=0.0)
    junk = tmp_path / "junk.jsonl"
    junk.write_bytes(b"\x00\xff garbage")
    with pytest.raises(ImportValidationError, match="junk.jsonl"):
        import_patterns(dst, junk, now=0.0)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ImportValidationError, match="empty"):
        import_patterns(dst, empty, now=0.0)
    exported.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportValidationError, match="limit"):
        import_patterns(dst, exported, now=0.0, limits=ImportLimits(max_file_bytes=100))
    with pytest.raises(ImportValidationError, match="more than 3 patterns"):
        import_patterns(dst, exported, now=0.0, limits=ImportLimits(max_patterns=3))
    with pytest.raises(ImportValidationError, match="no such file"):
        import_patterns(dst, tmp_path / "missing.jsonl", now=0.0)
    assert len(dst) == 0


def test_a_pack_from_another_embedding_space_of_the_same_size_is_refused(tmp_path):
    from swarm.memory import ContextEmbedder, ReasoningBank, Trajectory, Step
    source = ReasoningBank.open(tmp_path / "a.db", ContextEmbedder(3, dim=16, seed=1), agent="a")
    source.learn(Trajectory(id="t", agent="a", context=np.array([0.1, 0.2, 0.3]),
                            steps=(Step("buy", "x", 1.0),), reward=1.0, task="t", domain="d"))
    source.export(tmp_path / "p.jsonl")
    source.close()
    header = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert header["embedder"].startswith("context-rff/3x16/")
    other = ReasoningBank.open(tmp_path / "b.db", ContextEmbedder(3, dim=16, seed=2))
    with pytest.raises(ImportValidationError, match="embedding space"):
        other.import_(tmp_path / "p.jsonl")
    assert len(other.store) == 0
    same = ReasoningBank.open(tmp_path / "c.db", ContextEmbedder(3, dim=16, seed=1))
    assert same.import_(tmp_path / "p.jsonl").imported == 1
    other.close()
    same.close()
