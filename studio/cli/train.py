"""CLI commands for training a student model on a recipe."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
