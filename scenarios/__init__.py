"""Deployment-pattern and learning scenarios, with their checks."""
