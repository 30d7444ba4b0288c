"""One small module per deployment topology: its agents and roles, whom each may contact, and
the rules its controller follows (scaling, rotation, rollout). ``TOPOLOGIES`` lists them."""

TOPOLOGIES = ("mesh", "hierarchical", "ring", "star", "auto_scale", "multi_strategy", "blue_green", "canary")
