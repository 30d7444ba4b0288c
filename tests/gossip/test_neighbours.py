"""Bounded replication: ring neighbourhoods, and nodes that keep only their neighbours' writes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarm.gossip import GossipConfig, ring_of
from swarm.gossip.neighbours import Ring, origin_node
from swarm.orchestrator import Swarm
from swarm.specs import SwarmConfig
from topologies import mesh

from .test_protocol import cluster, pattern


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), half=st.integers(0, 5))
def test_neighbourhoods_are_symmetric_and_of_the_degree(n: int, half: int) -> None:
    members = [f"m{i}" for i in range(n)]
    ring = Ring(members, 2 * half)
    for m in members:
        mine = ring.neighbours(m)
        assert m not in mine
        assert len(mine) == (n - 1 if ring.full else 2 * half)
        assert all(m in ring.neighbours(x) for x in mine)  # symmetric: who keeps whose writes agrees
    assert ring.full == (half == 0 or n <= 2 * half + 1)


def test_the_ring_is_the_same_from_any_member_list_order_and_odd_degrees_are_refused() -> None:
    a = Ring(["x", "y", "z", "w", "v", "u"], 2)
    b = Ring(["u", "v", "w", "x", "y", "z"], 2)
    assert all(a.neighbours(m) == b.neighbours(m) for m in "uvwxyz")
    with pytest.raises(ValueError, match="even"):
        Ring(["x"], 3)
    with pytest.raises(ValueError, match="even"):
        GossipConfig(dim=8, degree=3)
    assert origin_node("peer-3~2") == "peer-3" and origin_node("peer-3") == "peer-3"


def test_nodes_keep_exactly_their_neighbours_writes() -> None:
    net = cluster(12, degree=4)
    for node in net.nodes.values():  # a static member list, as a swarm gives its agents
        node.bootstrap(net.nodes, 0.0)
    for i, node in enumerate(net.nodes.values()):
        node.publish([pattern(i, origin=node.id)], 0.0)
    net.run(15.0)
    ring = ring_of(frozenset(net.nodes), 4)
    for name, node in net.nodes.items():
        kept = {origin_node(o) for o in node.digest()}
        assert kept == {name, *ring.neighbours(name)}  # every write of the neighbours, no other
        assert len(node.patterns) == 5
    assert sum(n.stats.entries_unwanted for n in net.nodes.values()) == 0  # nobody was sent what it does not keep


def test_a_big_mesh_is_bounded_and_a_small_one_fully_replicated() -> None:
    cfg = SwarmConfig(seed=3, episodes=1, transport="sim", runtime="in-process")
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(3, 12)) as swarm:
        swarm.run()
        ring = ring_of(frozenset(swarm.agents), mesh.DEGREE)
        assert not ring.full
        for a in swarm.agents.values():
            assert {origin_node(o) for o in a.digest()} == {a.id, *ring.neighbours(a.id)}
        assert swarm._replicas_agree()  # settle saw the neighbourhoods agree (it did not run out of time)
        settled_at = swarm.kernel.now()
    assert settled_at < cfg.episode_seconds + cfg.settle_max
    with Swarm.of(mesh.TOPOLOGY, cfg, mesh.agents(3, 5)) as swarm:
        swarm.run()
        assert len({tuple(sorted(a.digest().items())) for a in swarm.agents.values()}) == 1  # full mesh
    full = SwarmConfig(seed=3, episodes=1, transport="sim", runtime="in-process", degree=0)
    with Swarm.of(mesh.TOPOLOGY, full, mesh.agents(3, 8)) as swarm:
        swarm.run()
        assert len({tuple(sorted(a.digest().items())) for a in swarm.agents.values()}) == 1
        assert len({o for o in next(iter(swarm.agents.values())).digest()}) == 8
