"""The swarm engine: ReasoningBank memory, market, learners, gossip, transports, runtimes, kernel."""

__version__ = "0.1.0"
