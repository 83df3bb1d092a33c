"""`price-bench` commands for data (being written)."""

import click


def register(cli: click.Group) -> None:
    """Add this module's commands to ``cli``."""
