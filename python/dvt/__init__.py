"""dvt from Python: see `dvt.api`."""
