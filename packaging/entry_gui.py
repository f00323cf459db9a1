"""The bundle's windowed executable: opens the studio."""

from studio.main import gui

gui()
