"""CLI commands for the teacher and the generation loop."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
