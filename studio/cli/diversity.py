"""CLI commands for diversity of document sets and mode-collapse alarms."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
