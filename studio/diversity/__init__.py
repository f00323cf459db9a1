"""Diversity metrics, 2-D maps and mode-collapse alarms over document sets.

``sets`` (which documents form a set: generation round, batch, plan cell, teacher, source, score
band, kind, corpus filter), ``tokens`` and ``lexical`` (window measures, openings, outlines),
``semantic`` (Vendi, pairwise distance, topics, precision/recall), ``reference`` (the real pages'
Kneser-Ney model), ``neardup`` (MinHash rate via :mod:`studio.dedup`), ``analysis`` (measuring
sets against the real band), ``alarms`` (topic loss, template collapse, tail loss),
``projection`` (PCA / UMAP), ``project`` (a project's sets, loaded and embedded), ``simulate``
(collapse scenarios for tests and benchmarks, and real pages that ship with Python).

Example::

    from studio.diversity.project import analyze

    report = analyze(project, store, "round", task=task)
    report.to_dict()["alarms"]      # [{"set": "round 5", "kind": "topic loss", ...}]
"""
