"""Deployment topologies: who talks to whom, roles and scaling rules (one module each)."""
