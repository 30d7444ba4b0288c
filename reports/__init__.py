"""Metrics JSON, the comparison report, charts and the pytest plugin that writes them."""
