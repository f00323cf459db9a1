"""Benchmark decontamination: n-gram overlap against benchmark sets."""
