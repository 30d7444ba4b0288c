"""Transports for the gossip bus: a simulated network in virtual time (QUIC comes next), and the
glue that runs a gossip node on any of them."""

from .base import Endpoint
from .bus import BusStats, GossipBus
from .sim import LinkProfile, LinkStats, SimEndpoint, SimNetwork

__all__ = ["BusStats", "Endpoint", "GossipBus", "LinkProfile", "LinkStats", "SimEndpoint", "SimNetwork"]
