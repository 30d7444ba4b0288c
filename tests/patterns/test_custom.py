"""Users' own topologies (registered by a call, ``--topology MODULE``, or an entry point), with the
checks every swarm must pass. Without any, nothing here runs."""

import pytest

from reports.plugin import assert_check
from swarm.topology import registered

TOPOLOGIES = registered()
if not TOPOLOGIES:
    pytest.skip("no user topology registered (--topology MODULE, or an entry point)", allow_module_level=True)


def _patterns(gossip_only: bool = False) -> list:
    return [pytest.param(name, marks=pytest.mark.pattern(name), id=name)
            for name, t in TOPOLOGIES.items() if t.gossip or not gossip_only]


@pytest.mark.parametrize("pattern", _patterns())
def test_memory_pays(pattern_result, pattern):
    assert_check(pattern_result(pattern), "memory pays")


@pytest.mark.parametrize("pattern", _patterns(gossip_only=True))
def test_sharing_pays(pattern_result, pattern):
    assert_check(pattern_result(pattern), "sharing pays")
