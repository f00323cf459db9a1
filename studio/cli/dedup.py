"""CLI commands for near-duplicates and benchmark decontamination."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
