"""CLI commands for teachers: checking a local or remote teacher answers."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
