"""The commands of `python -m runner`, one module each (see runner.cli)."""
