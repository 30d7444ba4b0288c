"""The control channel's messages: typed, versioned, JSON; what arrives is checked, nothing runs."""

from __future__ import annotations

import ast
import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.agent import agent_decisions
from swarm.learning.memory_policy import MemoryConfig
from swarm.learning.session import RunLog
from swarm.memory.models import Pattern, Source
from swarm.memory.transfer import ImportPolicy
from swarm.runtime import messages as msg
from swarm.specs import AgentSpec, SwarmConfig, rule

ROOT = Path(__file__).resolve().parents[2]


@rule
def only_hub(me: str, live: list[str]) -> list[str]:
    return [m for m in live if m == "hub"]


def not_a_rule(me: str, live: list[str]) -> list[str]:
    return list(live)


@rule
class Wrapper:
    def __init__(self, policy: object, every: int = 3) -> None:
        self.policy, self.every = policy, every


HERE = __name__


def _setup(**overrides: object) -> msg.Setup:
    spec = AgentSpec("p0", market_seed=7, memory=MemoryConfig(k=16), wrap=functools.partial(Wrapper, every=5))
    cfg = SwarmConfig(episodes=2, transport="quic", runtime="process")
    log = RunLog("p0", choices=[1, 2], rewards=[0.01, float("nan")], correct=[True, False], tied=[False, True])
    fields = dict(spec=spec, decisions=agent_decisions(spec, cfg, 20), config=cfg, index=0, boots=1, store_dir="/tmp/x",
                  space="abc", contacts=only_hub, share=None, certificate_pem=b"cert", key_pem=b"key", ca_pem=b"ca",
                  write_key=bytes(range(32)), certificates=[b"c1", b"c2"], members=["p0", "p1"], seeds=["p1"], cursor=10, log=log, informed_by=[("a", "b"), ()],
                  memory=MemoryConfig(k=8, allowed=("momentum",)), quota=0.5)
    fields.update(overrides)
    return msg.Setup(**fields)  # type: ignore[arg-type]


def test_a_setup_survives_the_wire_with_every_value_intact():
    setup = _setup()
    back = msg.decode(msg.encode(setup), trusted=[HERE])
    assert isinstance(back, msg.Setup)
    assert back.spec.memory == setup.spec.memory and back.config == setup.config
    assert back.spec.wrap.func is Wrapper and back.spec.wrap.keywords == {"every": 5}
    assert back.contacts is only_hub and back.share is None
    assert back.certificate_pem == b"cert" and back.informed_by == [("a", "b"), ()]
    assert back.write_key == bytes(range(32)) and back.certificates == [b"c1", b"c2"]
    assert back.memory.allowed == ("momentum",) and back.memory.feature_scale == setup.memory.feature_scale
    assert back.log.rewards[0] == 0.01 and np.isnan(back.log.rewards[1]) and back.log.tied == [False, True]
    for a, b in zip(setup.decisions, back.decisions):  # exact: arrays travel as raw bytes
        assert a.context.symbol == b.context.symbol and a.regime == b.regime
        assert np.array_equal(a.context.features, b.context.features) and a.context.features.dtype == b.context.features.dtype
        assert np.array_equal(a.pnl, b.pnl)


def test_answers_carry_patterns_reports_and_maps_with_tuple_keys():
    p = Pattern("x", "t", "c", np.arange(4, dtype=np.float32), source=Source("a", "tr", "success", 0.02),
                tags=("k",), provenance=({"agent": "a"},))
    value = {"patterns": [p], "traffic": {("a", "b"): 3}, "ids": {"x", "y"}, "policy": ImportPolicy(mode="selective")}
    back = msg.decode(msg.encode(msg.Ok(value))).value
    q = back["patterns"][0]
    assert q.digest() == p.digest() and q.source == p.source and q.embedding.dtype == np.float32
    assert back["traffic"] == {("a", "b"): 3} and back["ids"] == {"x", "y"}
    assert back["policy"] == ImportPolicy(mode="selective")


def test_the_wire_is_json_with_a_version_and_no_pickle():
    doc = json.loads(msg.encode(msg.Start(12.5)))
    assert doc == {"v": msg.VERSION, "type": "Start", "body": {"epoch": 12.5}}
    for path in (ROOT / "swarm" / "runtime").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "pickle" not in names | mods, path.name


@pytest.mark.parametrize("data, problem", [
    (b"\x80\x04garbage", "not a JSON message"),
    (b"[1, 2]", "a message is a JSON object"),
    (b'{"v": 2, "type": "Hello", "body": {}}', "version 2"),
    (b'{"v": 1, "type": "Exec", "body": {}}', "unknown message type"),
    (b'{"v": 1, "type": "Start", "body": {}}', "fields"),
    (b'{"v": 1, "type": "Start", "body": {"epoch": "soon"}}', "Start.epoch: a str is not a"),
    (b'{"v": 1, "type": "Members", "body": {"members": ["a", 3]}}', "Members.members"),
    (b'{"v": 1, "type": "Ok", "body": {"value": {"$s": [[1]]}}}', "malformed value"),
    (b'{"v": 1, "type": "Start", "body": {"epoch": {"$c": "Popen", "f": {}}}}', "unknown value type"),
    (b'{"v": 1, "type": "Start", "body": {"epoch": {"$rule": "os:system"}}}', "is not a rule"),
    (b'{"v": 1, "type": "Start", "body": {"epoch": {"$rule": "subprocess:run"}}}', "not in a trusted module"),
    (b'{"v": 1, "type": "Ok", "body": {"value": {"$a": "AAAA", "dtype": "<f8", "shape": [9]}}}', "does not match"),
    (b'{"v": 1, "type": "Ok", "body": {"value": {"$a": "AAAA", "dtype": "|O", "shape": [1]}}}', "malformed array"),
    (b'{"v": 1, "type": "Ok", "body": {"value": {"$c": "MemoryConfig", "f": {"k": 0}}}}', "invalid MemoryConfig"),
    (b'{"v": 1, "type": "Ok", "body": {"value": {"$zz": 1}}}', "unknown value tag"),
])
def test_a_bad_message_is_refused_with_one_line(data, problem):
    with pytest.raises(msg.ProtocolError, match=problem) as info:
        msg.decode(data, trusted=["os"])
    assert "\n" not in str(info.value)


def test_only_marked_rules_in_trusted_modules_resolve():
    wire = msg.encode(msg.Ok(only_hub))
    assert msg.decode(wire, trusted=[HERE]).value is only_hub
    with pytest.raises(msg.ProtocolError, match="not in a trusted module"):
        msg.decode(wire)  # the agent was not told to trust this module
    forged = wire.replace(b"only_hub", b"not_a_rule")
    with pytest.raises(msg.ProtocolError, match="is not a rule"):
        msg.decode(forged, trusted=[HERE])
    with pytest.raises(msg.ProtocolError, match="cannot send"):
        msg.encode(msg.Ok(not_a_rule))  # an unmarked function is not sent at all
    assert msg.rule_modules([only_hub, None, functools.partial(Wrapper, every=2)]) == [HERE]


def test_values_that_are_not_message_types_are_not_sent():
    with pytest.raises(msg.ProtocolError, match="cannot send"):
        msg.encode(msg.Ok(object()))
    with pytest.raises(msg.ProtocolError, match="cannot send an array"):
        msg.encode(msg.Ok(np.array(["a"], dtype=object)))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
        ["$a", "$b", "$c", "$d", "$f", "$m", "$rule", "$s", "$t", "f", "kw", "dtype", "shape", "x"]), inner, max_size=3),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(msg.MESSAGES)), json_values)
def test_random_bodies_decode_or_fail_with_a_protocol_error(kind, value):
    cls = msg.MESSAGES[kind]
    body = {f.name: value for f in dataclasses.fields(cls)}
    data = json.dumps({"v": 1, "type": kind, "body": body}).encode()
    try:
        msg.decode(data)
    except msg.ProtocolError:
        pass
    except (TypeError, ValueError) as e:  # a dataclass refusing a value is re-raised as ProtocolError
        pytest.fail(f"leaked {type(e).__name__}: {e}")
