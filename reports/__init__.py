"""Reports: per-pattern metrics JSON (with its schema), the markdown comparison with charts, and
the pytest plugin that writes both while the pattern suite runs."""
