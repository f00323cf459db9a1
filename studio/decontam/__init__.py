"""Benchmark decontamination: n-gram overlap against benchmark sets.

``benchmarks`` (the shipped samples and curators' files), ``index`` (:class:`BenchmarkIndex`:
which items a text shares an n-gram span with) and ``corpus`` (checking a project's documents
and keeping the hits, which the export gate reads).

Example::

    from studio.decontam import BenchmarkIndex

    index = BenchmarkIndex.load()                 # every shipped benchmark, 13-grams
    index.hits(page)                              # [Hit(benchmark='gsm8k', item_id=..., ...)]
"""

from studio.decontam.benchmarks import BenchmarkError, load_benchmark, shipped_names
from studio.decontam.index import DEFAULT_ALLOW, BenchmarkIndex, Hit, N

__all__ = [
    "DEFAULT_ALLOW",
    "N",
    "BenchmarkError",
    "BenchmarkIndex",
    "Hit",
    "load_benchmark",
    "shipped_names",
]
