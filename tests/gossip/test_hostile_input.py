"""Hostile input from a member that holds a valid certificate: no frame or pattern pack may raise
anything but the protocol's (or the import's) own error, a refused frame changes nothing, and
whatever passes the one validator can be stored, searched, hashed, exported and sent on."""

from __future__ import annotations

import base64
import json
import math
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from swarm.gossip import GossipConfig, GossipNode, ProtocolError, decode
from swarm.gossip.codec import DELTA, DIGEST, HEADER, VERSION
from swarm.memory import ImportValidationError, PatternStore, export_patterns, import_patterns
from swarm.gossip.identity import contribution_message, version_message, write_message
from swarm.memory.models import revision_digest, revision_of
from swarm.memory.transfer import pattern_from_record, pattern_to_record, revision_to_record
from tests.identities import RING, ident

from tests.conftest import FAULT_SCALE

from .test_protocol import DIM, pattern

pytestmark = pytest.mark.fault

# any JSON value, including what JSON accepts and a store cannot hold: lone surrogates, integers
# beyond 64 bits, NaN and infinities (Python's json writes and reads them), deep nesting
_text = st.text(st.characters(exclude_categories=()), max_size=20)
_dangerous = st.sampled_from([2**63, 2**63 - 1, -(2**63) - 1, 10**30, 10**400, 3e38, 1e-30, math.nan, math.inf,
                              "\ud800", "ok\udfffok", "x" * 70_000, [[[[[[[[[[[]]]]]]]]]]]])
_leaf = _dangerous | st.none() | st.booleans() | st.integers() | st.floats() | _text  # one leaf in six dangerous
_json = _leaf | st.recursive(_leaf, lambda inner: st.lists(inner, max_size=4)
                             | st.dictionaries(_text, inner, max_size=4), max_leaves=12)
_RECORD_KEYS = sorted(pattern_to_record(pattern(1)))


def _frame(kind: int, body: dict | str) -> bytes:
    payload = (body if isinstance(body, str) else json.dumps(body)).encode("utf-8")
    return HEADER.pack(b"SG", VERSION, kind, len(payload)) + payload


def _sig(agent: str, message: bytes) -> str:
    return base64.b64encode(ident(agent).signer.sign(message)).decode("ascii")


_NO_SIG = base64.b64encode(bytes(64)).decode("ascii")


def _write_sig(origin: str, seq: object, pid: object) -> str:
    """The origin's signature of its write (a well-signed entry: what fails must be the payload)."""
    try:
        return _sig(origin, write_message(origin, int(seq), pid if isinstance(pid, str) else ""))  # type: ignore[call-overload]
    except (UnicodeEncodeError, TypeError, ValueError):
        return _NO_SIG


def _signed(origin: str, seq: object, rec: object) -> list:
    """``[origin, seq, signature, record, version signature]``, signed as the origin and the author
    would (the record names the origin its author if it names none)."""
    if isinstance(rec, dict) and rec.get("author", "") == "":
        rec = {**rec, "author": origin}
    version_sig = _NO_SIG
    try:
        p = pattern_from_record(rec, DIM)
        if p.author in RING:
            version_sig = _sig(p.author, version_message(p.id, p.author, revision_digest(p.body_digest(), revision_of(p))))
    except (ImportValidationError, UnicodeEncodeError):
        pass
    return [origin, seq, _write_sig(origin, seq, rec.get("id") if isinstance(rec, dict) else None), rec, version_sig]


def _revision(origin: str, seq: int, fields: list, body: str) -> list:
    """A revision entry, its version signed by the origin as the pattern's author (when its
    fields can be hashed at all: what fails must then be the fields)."""
    try:
        version_sig = _sig(origin, version_message(str(fields[0]), origin, revision_digest(body, fields[1:])))
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError, struct.error):
        version_sig = _NO_SIG
    return [origin, seq, _write_sig(origin, seq, fields[0]), fields, [body, version_sig]]


def _contribution(origin: str, seq: int, values: list) -> list:
    """A contribution entry, signed by its origin (when its figures can be signed at all)."""
    try:
        sig = _sig(origin, contribution_message(origin, seq, str(values[0]), values[1:]))
    except (TypeError, ValueError, UnicodeEncodeError):
        sig = _NO_SIG
    return [origin, seq, sig, "c", values]


def _node() -> GossipNode:
    node = GossipNode("b", GossipConfig(dim=DIM), seed=1, identity=ident("b"))
    node.bootstrap(["b", "m"], 0.0)
    return node


def _still_sound(node: GossipNode) -> None:
    """Everything the node's store holds can be searched, hashed, exported and put on the wire,
    and a valid write from the same member is still taken."""
    store = node.log.store
    held = list(store)
    for p in held:
        json.dumps(pattern_to_record(p), allow_nan=False).encode("utf-8")
        p.body_digest()
    assert len(store.search(pattern(2).embedding, 5)) == min(5, len(held))
    for p in held:  # and used: an outcome on its author's figures, and on a contributor's record
        store.record_outcome(p.id, True, 0.5, now=5.0, by=p.author or "b")
        store.record_outcome(p.id, False, -0.5, now=5.0, by="z")
        got = store.get(p.id)
        assert got is not None and got.successes + got.failures <= got.uses
    fresh = pattern(7, origin="m")
    seq = node.digest().get("m", 0) + 1
    node.receive(_frame(DELTA, {"from": "m", "entries": [_signed("m", seq, pattern_to_record(fresh))]}), 1.0, sender="m")
    assert fresh.id in node.patterns


def _record(**changes: object) -> dict:
    rec = pattern_to_record(pattern(1, origin="m"))
    rec.update(changes)
    return rec


def _b64(v: np.ndarray) -> str:
    return base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")


# what one member sent, each of which stopped a node's bus before (or was taken and did harm)
_KNOWN = {
    "lone surrogate in a title": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(title="\ud800"))]}),
    "lone surrogate in a sender id": _frame(DELTA, {"from": "\udfff", "entries": []}),
    "JSON nested 100,000 deep": _frame(DELTA, '{"from": "m", "entries": [["m", 1, ' + "[" * 100_000
                                       + "]" * 100_000 + "]]}"),
    "version 2**63": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(version=2**63))]}),
    "uses 10**30": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(uses=10**30))]}),
    "created_at 10**400": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(created_at=10**400))]}),
    "sequence number 2**64": _frame(DELTA, {"from": "m", "entries": [_signed("m", 2**64, _record())]}),
    "a 1 MB agent name": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        source={"agent": "a" * 1_000_000, "trajectory": "", "outcome": "", "reward": 0.1}))]}),
    "50,000 provenance entries": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        provenance=[{"e": i} for i in range(50_000)]))]}),
    "NaN in provenance": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(provenance=[{"x": math.nan}]))]}),
    "provenance nested 50 deep": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        provenance=[json.loads('{"a":' * 50 + "1" + "}" * 50)]))]}),
    "embedding of 3e38": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        embedding=_b64(np.full(DIM, 3e38, np.float32))))]}),
    "embedding of 1e-30": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        embedding=_b64(np.full(DIM, 1e-30, np.float32))))]}),
    "revision with version 2**63": _frame(DIGEST, {"from": "m", "entries": [_revision("m", 1, [
        "x", 0.5, 1, 1, 0, 0.1, 2.0, 2**63, "m"], "0" * 32)]}),
    # within 64 bits, so once taken; then the next outcome overflowed (the pattern's digest, or the
    # sum of its contributors' figures: a healthy store reported corrupt, every honest record refused)
    "uses 2**63 - 1": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(
        uses=2**63 - 1, successes=2**63 - 1, failures=0))]}),
    "a contribution of 2**63 - 1 uses": _frame(DIGEST, {"from": "m", "entries": [_contribution(
        "m", 1, ["x", 2**63 - 1, 2**63 - 1, 0, 1.0, 3.0])]}),
    "total reward 1e308": _frame(DELTA, {"from": "m", "entries": [_signed("m", 1, _record(total_reward=1e308))]}),
    # Python's json refuses integer literals of more than 4,300 digits with a bare ValueError
    "an integer of 5,000 digits": _frame(DELTA, '{"from": "m", "entries": [["m", ' + "9" * 5000 + ", 1]]}"),
}


@pytest.mark.parametrize("case", sorted(_KNOWN))
def test_each_known_killer_frame_is_refused_and_the_node_keeps_working(case):
    node = _node()
    before = (dict(node.digest()), len(node.log.store))
    with pytest.raises(ProtocolError):
        node.receive(_KNOWN[case], 1.0, sender="\udfff" if "sender" in case else "m")
    assert (dict(node.digest()), len(node.log.store)) == before
    _still_sound(node)


@given(st.binary(max_size=200))
@settings(max_examples=150 * FAULT_SCALE, deadline=None)
def test_random_bytes_raise_only_protocol_errors(data):
    for blob in (data, HEADER.pack(b"SG", VERSION, DELTA, len(data)) + data):
        try:
            decode(blob, DIM)
        except ProtocolError:
            pass


_B64_64 = st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode("ascii"))


@given(st.one_of(st.lists(_B64_64, max_size=3), st.lists(_B64_64 | _json, max_size=4), _json),
       st.sampled_from([2, 4]),
       st.one_of(st.tuples(st.integers(-2, 4), st.binary(max_size=120).map(
           lambda b: base64.b64encode(b).decode("ascii"))).map(list), _json))
@example([], 2, [0, "AAAA"])  # a place past the end of the list
@example(["A" * 86 + "==", "B" * 86 + "=="], 4, [2, "AAAA"])
@settings(max_examples=150 * FAULT_SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_frames_roots_and_any_reference_to_them_are_refused_cleanly_or_prove_nothing(roots, field, ref):
    """Frame version 7's list of batch signatures, and a signature field naming one of them by
    place: whatever a member puts there is refused as a ProtocolError, or decodes to bytes that
    prove no write, and the node keeps working."""
    node = _node()
    entry = _signed("m", 1, _record())
    entry[field] = ref
    try:
        node.receive(_frame(DELTA, {"from": "m", "entries": [entry], "roots": roots}), 1.0, sender="m")
    except ProtocolError:
        pass
    assert not node.patterns
    _still_sound(node)


@given(st.sampled_from(_RECORD_KEYS + ["source.agent", "source.reward", "source"]), _json)
@settings(max_examples=200 * FAULT_SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_pattern_entry_with_any_value_in_any_field_is_refused_cleanly_or_taken_soundly(key, value):
    rec = _record()
    if key.startswith("source."):
        rec["source"] = {**rec["source"], key.split(".")[1]: value}
    else:
        rec[key] = value
    node = _node()
    try:
        node.receive(_frame(DELTA, {"from": "m", "entries": [_signed("m", 1, rec)]}), 1.0, sender="m")
    except ProtocolError:
        assert not node.patterns
    _still_sound(node)


@given(st.integers(0, 8), _json)
@settings(max_examples=150 * FAULT_SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_revision_with_any_value_in_any_field_is_refused_cleanly_or_applied_soundly(index, value):
    node = _node()
    held = pattern(1, origin="m")
    node.receive(_frame(DELTA, {"from": "m", "entries": [_signed("m", 1, pattern_to_record(held))]}), 1.0, sender="m")
    rev = revision_to_record(held.bumped("m", uses=1, successes=1))
    fields = [rev["id"], rev["confidence"], rev["uses"], rev["successes"], rev["failures"], rev["total_reward"],
              rev["last_used_at"], rev["version"], rev["updated_by"]]
    fields[index] = value
    try:
        node.receive(_frame(DIGEST, {"from": "m", "entries": [_revision("m", 2, fields, held.body_digest())]}), 2.0,
                     sender="m")
    except ProtocolError:
        pass
    _still_sound(node)


@given(st.integers(0, 5), _json)
@settings(max_examples=150 * FAULT_SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_a_contribution_with_any_value_in_any_field_is_refused_cleanly_or_taken_soundly(index, value):
    node = _node()
    held = pattern(1, origin="b")
    node.log.store.add_many([held])
    values: list = [held.id, 2, 1, 1, 0.25, 3.0]
    values[index] = value
    try:
        node.receive(_frame(DIGEST, {"from": "m", "entries": [_contribution("m", 1, values)]}), 2.0, sender="m")
    except ProtocolError:
        assert not node.log.store.contributions(held.id)
    figures = node.log.store.get(held.id)
    assert figures is not None and figures.successes + figures.failures <= figures.uses
    _still_sound(node)


@given(st.sampled_from(_RECORD_KEYS), _json)
@settings(max_examples=100 * FAULT_SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
def test_an_imported_pack_with_any_value_in_any_field_is_refused_cleanly_or_taken_soundly(tmp_path, key, value):
    good = tmp_path / "good.jsonl"
    export_patterns([pattern(1, origin="m")], good, DIM, now=0.0)
    header, line = good.read_text().splitlines()
    rec = json.loads(line)
    rec[key] = value
    bad = tmp_path / "bad.jsonl"
    bad.write_text(header + "\n" + json.dumps(rec) + "\n")
    store = PatternStore(":memory:", dim=DIM)
    try:
        import_patterns(store, bad, now=1.0)
    except ImportValidationError as e:
        assert "\n" not in str(e) and len(store) == 0
    for p in store:  # what was taken can be exported again
        export_patterns([p], tmp_path / "again.jsonl", DIM, now=2.0)
    store.close()


def test_figures_at_the_validators_bounds_can_be_used_and_summed_without_overflow():
    """The largest counts and rewards the validator takes, on a pattern and on many contributors'
    records of it: outcomes still apply and the figures still sum, within 64 bits."""
    from swarm.memory.transfer import ImportLimits

    top, reward = ImportLimits().max_count, ImportLimits().max_total_reward
    node = _node()
    rec = _record(uses=top, successes=top, failures=0, total_reward=reward, version=1)
    node.receive(_frame(DELTA, {"from": "m", "entries": [_signed("m", 1, rec)]}), 1.0, sender="m")
    pid = rec["id"]
    assert pid in node.patterns
    entries = [_contribution(f"c{i}", 1, [pid, top, 0, top, -reward, 1.0]) for i in range(64)]  # each at the bound
    node.receive(_frame(DIGEST, {"from": "m", "entries": entries}), 2.0, sender="m")
    store = node.log.store
    assert len(store.contributions(pid)) == 64
    _still_sound(node)  # outcomes by the author and by another contributor apply
    figures = store.get(pid)
    assert figures is not None and figures.uses == 65 * top + 2 and figures.failures == 64 * top + 1


def test_a_pattern_id_the_validator_takes_can_be_contributed_to_and_deleted():
    """Ids are bounded alike in patterns, contributions and deletions (a 300-character id was
    taken in a pattern, and its contributions and deletion then closed the connection)."""
    from swarm.gossip.identity import deletion_message

    node = _node()
    rec = _record(id="p" * 300)
    node.receive(_frame(DELTA, {"from": "m", "entries": [_signed("m", 1, rec)]}), 1.0, sender="m")
    node.receive(_frame(DIGEST, {"from": "m", "entries": [_contribution("c1", 1, [rec["id"], 1, 1, 0, 0.5, 2.0])]}),
                 2.0, sender="m")
    assert len(node.log.store.contributions(rec["id"])) == 1
    tombstone = [rec["id"], 2, "m", "m", _sig("m", deletion_message(rec["id"], "m"))]
    node.receive(_frame(DELTA, {"from": "m", "entries": [["m", 2, _write_sig("m", 2, rec["id"]), None, tombstone]]}),
                 3.0, sender="m")
    assert rec["id"] not in node.patterns


@pytest.mark.parametrize("line, why", [
    ('{"id": "x", "uses": ' + "9" * 5000 + "}", "digits"),
    ("USES", "out of range"),
])
def test_an_imported_pack_with_out_of_bound_figures_gets_one_line(tmp_path, line, why):
    good = tmp_path / "good.jsonl"
    export_patterns([pattern(1, origin="m")], good, DIM, now=0.0)
    header, rec = good.read_text().splitlines()
    if line == "USES":
        line = json.dumps({**json.loads(rec), "uses": 2**63 - 1, "successes": 2**63 - 1})
    bad = tmp_path / "bad.jsonl"
    bad.write_text(header + "\n" + line + "\n")
    store = PatternStore(":memory:", dim=DIM)
    with pytest.raises(ImportValidationError, match=why) as e:
        import_patterns(store, bad, now=1.0)
    assert "\n" not in str(e.value) and len(store) == 0
    store.close()


def test_a_frame_that_fails_in_an_unforeseen_way_closes_one_connection_and_the_bus_runs_on(monkeypatch):
    from swarm.kernel import VirtualKernel
    from swarm.transport import GossipBus
    from swarm.transport.sim import SimNetwork

    k = VirtualKernel()
    net = SimNetwork(k, 0)
    cfg = GossipConfig(dim=DIM)
    nodes = {n: GossipNode(n, cfg, seed=3, identity=ident(n)) for n in ("a", "b")}
    buses = {n: GossipBus(k, nodes[n], net.endpoint(n)) for n in nodes}
    for node in nodes.values():
        node.bootstrap(nodes, 0.0)
    real = nodes["b"].receive
    calls = {"n": 0}

    def flaky(data, now, sender=None):  # the first frame hits a hole in the checks
        calls["n"] += 1
        if calls["n"] == 1:
            raise OverflowError("a value the checks let through")
        return real(data, now, sender=sender)

    monkeypatch.setattr(nodes["b"], "receive", flaky)

    async def main():
        async with k.task_group() as tg:
            for bus in buses.values():
                tg.start_soon(bus.run)
            nodes["a"].publish([pattern(1, origin="a")], k.now())
            await k.sleep(10)
            tg.cancel()

    k.run(main)
    assert buses["b"].stats.frames_failed == 1 and calls["n"] > 1
    assert pattern(1, origin="a").id in nodes["b"].patterns
