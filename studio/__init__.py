"""Textbook Studio: a workbench for curating the training data of small language models."""

__version__ = "0.1.0"
