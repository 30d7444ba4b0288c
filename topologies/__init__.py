"""One small module per deployment topology, each exporting one value, ``TOPOLOGY`` (a
:class:`swarm.topology.Topology`): its roles and agents, whom each contacts, what each shares, and
its controller (the leader's loop, the scaler, the rollout stages, the hand-offs)."""

TOPOLOGIES = ("mesh", "hierarchical", "ring", "star", "auto_scale", "multi_strategy", "blue_green", "canary")
