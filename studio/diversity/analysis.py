"""Measure document sets against the real pages: every family of measure, the real band, alarms.

Sizes matter to most measures (distinct-n falls, Vendi rises with more text), so every set is
measured on pieces of one size: *blocks* of ``block`` documents for the document measures and
*windows* of ``window`` words for the lexical ones; a set's value is the mean over its pieces.
The real pages' band is the spread (5th to 95th percentile) of the same measure over random real
blocks and windows of the same size, so a set of 100 pages and one of 10,000 are read on the same
scale, and the band says how much a value moves by chance alone.

:func:`measure` works on texts and embeddings in memory (the benchmark calls it);
:func:`analyze` selects the sets of a project, loads and embeds them, and calls it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from studio.diversity import lexical, semantic
from studio.diversity.metrics import METRICS
from studio.diversity.neardup import near_duplicate_flags
from studio.diversity.reference import ReferenceModel
from studio.diversity.tokens import Tokens, Vocabulary, unique
from studio.progress import Task
from studio.text import plural


@dataclass(slots=True)
class Options:
    block: int = 200  # documents per block (fewer when the smallest set is smaller)
    window: int = 20_000  # words per lexical window (fewer when a set has fewer words)
    draws: int = 30  # random real blocks and windows behind the real band
    topics: int = 16  # k-means clusters of the real pages
    min_docs: int = 20  # a smaller set is listed but not measured
    min_window: int = 1_000
    seed: int = 0


@dataclass(slots=True)
class Documents:
    """Documents ready to measure, aligned row by row."""

    ids: np.ndarray
    texts: list[str]
    embeddings: np.ndarray
    real: np.ndarray  # bool: a real (non-synthetic) page
    fitted: np.ndarray  # bool: the reference model was fitted on this page
    tokens: Tokens | None = None
    word_logp: np.ndarray | None = None  # ln P of every token under the reference model
    end_logp: np.ndarray | None = None  # ln P of each document's end
    rare_word: np.ndarray | None = None  # per token: the real pages use the word rarely
    log_ppl: np.ndarray | None = None  # per document, on its own words (see Measurer.own)
    rare: np.ndarray | None = None
    openings: list[str] = field(default_factory=list)
    outlines: list[str] = field(default_factory=list)
    signatures: np.ndarray | None = None
    topic: np.ndarray | None = None
    nn_similarity: np.ndarray | None = None
    in_real: np.ndarray | None = None  # bool: among the real pages of the baseline


@dataclass(slots=True)
class SetResult:
    name: str
    doc_ids: list[int]
    x: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    blocks: int = 0
    windows: int = 0
    note: str = ""
    perplexity: dict[str, float] = field(default_factory=dict)  # percentiles over the set
    topic_shares: list[float] = field(default_factory=list)
    openings: list[dict[str, Any]] = field(default_factory=list)
    outlines: list[dict[str, Any]] = field(default_factory=list)
    rows: np.ndarray | None = None  # rows of the Documents, for plots

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "x": self.x,
            "documents": len(self.doc_ids),
            "blocks": self.blocks,
            "windows": self.windows,
            "note": self.note,
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "perplexity": {k: _num(v) for k, v in self.perplexity.items()},
            "topic_shares": [round(s, 4) for s in self.topic_shares],
            "openings": self.openings,
            "outlines": self.outlines,
        }


@dataclass(slots=True)
class Report:
    """Sets measured against the real pages; ``alarms`` are filled by :mod:`alarms`."""

    by: str
    block: int
    window: int
    real: SetResult
    band: dict[str, dict[str, float]]
    sets: list[SetResult]
    topics: list[str]
    docs: Documents
    alarms: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    coords: np.ndarray | None = None  # 2-D map of every row of ``docs``
    projection: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def set_named(self, name: str) -> SetResult:
        return next(s for s in self.sets if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "block": self.block,
            "window": self.window,
            "real": self.real.to_dict(),
            "band": {m: {k: _num(v) for k, v in b.items()} for m, b in self.band.items()},
            "sets": [s.to_dict() for s in self.sets],
            "topics": self.topics,
            "alarms": [a.to_dict() for a in self.alarms],
            "notes": self.notes,
            "projection": self.projection,
            "metrics": {m.name: {"label": m.label, "family": m.family} for m in METRICS.values()},
        }


def _num(v: float) -> float | None:
    return None if v is None or not np.isfinite(v) else round(float(v), 5)


# -- per-document features ------------------------------------------------------------------------


def prepare(docs: Documents, reference: ReferenceModel, task: Task | None = None) -> Vocabulary:
    """Tokens, word probabilities, rare words, openings, outlines and signatures of every
    document."""
    from studio.dedup import signatures

    task = task or Task()
    vocab = Vocabulary()
    docs.tokens = vocab.encode(docs.texts)
    words = vocab.words()
    task.check()
    mapped = reference.map_ids(words)
    docs.word_logp, docs.end_logp = reference.token_log_probs(
        Tokens(mapped[docs.tokens.ids], docs.tokens.offsets)
    )
    docs.rare_word = reference.rare(words)[docs.tokens.ids]
    everything = np.ones(len(docs.tokens.ids), dtype=bool)
    docs.log_ppl, docs.rare = _tails_of(docs, np.arange(len(docs.ids)), everything)
    task.check()
    docs.openings = [lexical.opening(t) for t in docs.texts]
    docs.outlines = [lexical.outline(t) for t in docs.texts]
    docs.signatures = signatures(docs.texts)
    docs.nn_similarity = np.full(len(docs.ids), np.nan)
    return vocab


def _tails_of(docs: Documents, rows: np.ndarray, own: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log perplexity, rare word share) of ``rows`` over the tokens ``own`` marks (aligned with
    the rows' tokens); NaN for pages the reference model was fitted on."""
    assert docs.tokens is not None and docs.word_logp is not None and docs.end_logp is not None
    assert docs.rare_word is not None
    pos = docs.tokens.positions(rows)
    lengths = docs.tokens.lengths()[rows]
    doc = np.repeat(np.arange(len(rows)), lengths)
    n = np.bincount(doc, weights=own, minlength=len(rows))
    logp = np.bincount(doc, weights=np.where(own, docs.word_logp[pos], 0.0), minlength=len(rows))
    log_ppl = -(logp + docs.end_logp[rows]) / (n + 1)
    # rare *types*: each distinct own word of a page counts once
    ids = docs.tokens.ids[pos][own].astype(np.uint64)
    d = doc[own]
    with np.errstate(over="ignore"):
        first = unique(ids * np.uint64(0x9E3779B97F4A7C15) ^ d.astype(np.uint64), index=True)[1]
    types = np.bincount(d[first], minlength=len(rows)).astype(np.float64)
    rare = np.bincount(d[first], weights=docs.rare_word[pos][own][first], minlength=len(rows))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(types > 0, rare / types, np.nan)
    fitted = docs.fitted[rows]
    return np.where(fitted, np.nan, log_ppl), np.where(fitted, np.nan, share)


# -- measuring ------------------------------------------------------------------------------------


def tail_measures(log_ppl: np.ndarray, rare: np.ndarray) -> dict[str, float]:
    """Perplexity percentiles and rare words over the documents the reference did not see."""
    lp = log_ppl[np.isfinite(log_ppl)]
    if len(lp) < 5:
        return {}
    p10, p50, p90 = np.exp(np.percentile(lp, [10, 50, 90]))
    return {
        "ppl_p10": float(p10),
        "ppl_p50": float(p50),
        "ppl_p90": float(p90),
        "ppl_spread": float(np.log(p90 / p10)),
        "rare_types": float(np.nanmean(rare)),
    }


class Measurer:
    """Measures blocks and windows of prepared documents against the real pages.

    Topic and tail measures read each page on its *own* words: the word 5-grams that many pages
    of the block share (a template's opening, headings and closing) are left out, and such a page
    is embedded again without them. A template is then seen by the template measures only, and
    does not pass for topic loss (its words pull every page's embedding the same way) or tail
    loss (its words are common ones).
    """

    def __init__(
        self,
        docs: Documents,
        real_rows: np.ndarray,
        topics: semantic.Topics,
        words: np.ndarray,
        block: int,
        window: int,
        options: Options,
        embed: Callable[[list[str]], np.ndarray],
        all_real: np.ndarray | None = None,
    ) -> None:
        self.docs, self.real_rows, self.topics, self.words = docs, real_rows, topics, words
        self.block, self.window, self.options, self.embed = block, window, options, embed
        self.rng = np.random.default_rng(options.seed)
        # every real page of the baseline: the tails' band draws from all of their held-out pages
        self.all_real = real_rows if all_real is None else all_real
        self._embedded: dict[str, np.ndarray] = {}

    def _embed_own(self, texts: list[str]) -> np.ndarray:
        """Embeddings of pages' own words; a page drawn again with the same words is not
        embedded twice (real pages are drawn into many blocks)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._embedded]
        if todo:
            self._embedded.update(zip(todo, self.embed(todo), strict=True))
        return np.vstack([self._embedded[t] for t in texts])

    def own(
        self, rows: np.ndarray, tails: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(embeddings, log perplexity, rare word share) of ``rows`` on their own words."""
        docs = self.docs
        assert docs.tokens is not None
        sub = docs.tokens.subset(rows)
        shared = lexical.shared_spans(sub)
        X = docs.embeddings[rows]
        if shared.any():
            X = X.copy()
            per_doc = np.bincount(sub.doc_index(), weights=shared, minlength=len(rows))
            redo, texts = [], []
            for i in np.flatnonzero(per_doc > 0):
                own = sub.doc(i)[~shared[sub.offsets[i] : sub.offsets[i + 1]]]
                if len(own) >= 5:
                    redo.append(i)
                    texts.append(" ".join(self.words[own]))
            if redo:
                X[redo] = self._embed_own(texts)
        if not tails:
            return X, None, None
        log_ppl, rare = _tails_of(docs, rows, ~shared)
        return X, log_ppl, rare

    def block_measures(self, rows: np.ndarray, real_rows: np.ndarray) -> dict[str, float]:
        """Every document measure of one block, its coverage read against a real block."""
        docs = self.docs
        assert docs.nn_similarity is not None and docs.topic is not None
        assert docs.signatures is not None and docs.log_ppl is not None and docs.rare is not None
        nn = semantic.nearest_similarity(docs.embeddings[rows])
        docs.nn_similarity[rows] = nn
        X, log_ppl, rare = self.own(rows)
        assert log_ppl is not None and rare is not None
        docs.log_ppl[rows], docs.rare[rows] = log_ppl, rare
        real_X = self.own(real_rows, tails=False)[0]
        labels = self.topics.assign(X)
        docs.topic[rows] = labels  # a set's topic bars show what its pages are about, too
        one = np.zeros(len(rows), dtype=np.int64)
        precision, recall = semantic.precision_recall(real_X, X)
        out = {
            "vendi": semantic.vendi(X),
            "mean_cosine_distance": semantic.mean_cosine_distance(X),
            "nn_similarity": float(np.nanmean(nn)),
            "cluster_entropy": self.topics.entropy(labels),
            "topic_coverage": self.topics.coverage(labels, labels[docs.in_real[rows]]),
            "precision": precision,
            "recall": recall,
            "repeated_openings": float(
                lexical.repeated_share([docs.openings[r] for r in rows], one)[0]
            ),
            "repeated_outlines": float(
                lexical.repeated_share([docs.outlines[r] for r in rows], one)[0]
            ),
            "near_duplicates": float(near_duplicate_flags(docs.signatures[rows], one).mean()),
        }
        out.update(tail_measures(log_ppl, rare))
        return out

    def window_measures(self, rows: np.ndarray) -> tuple[dict[str, float], int]:
        """Mean lexical measures over the windows of ``rows``' words, and how many windows."""
        assert self.docs.tokens is not None
        per = lexical.window_measures(self.docs.tokens.subset(rows), self.window, self.words)
        if not per:
            return {}, 0
        return {k: float(v.mean()) for k, v in per.items() if len(v)}, len(per["distinct_1"])

    def measure_set(self, result: SetResult, rows: np.ndarray) -> None:
        order = self.rng.permutation(rows)
        per_block = []
        for b in range(len(order) // self.block):
            members = order[b * self.block : (b + 1) * self.block]
            ref = self.rng.choice(self.real_rows, size=self.block, replace=False)
            per_block.append(self.block_measures(members, ref))
        result.blocks = len(per_block)
        keys = dict.fromkeys(k for p in per_block for k in p)  # in order: --json is stable
        metrics = {k: float(np.nanmean([p.get(k, np.nan) for p in per_block])) for k in keys}
        lex, result.windows = self.window_measures(order)
        metrics.update(lex)
        result.metrics = metrics

    def real_band(self) -> dict[str, dict[str, float]]:
        """The spread of every measure over random real blocks and windows of the sets' size."""
        docs, real_rows, block, rng = self.docs, self.real_rows, self.block, self.rng
        assert docs.tokens is not None and docs.nn_similarity is not None
        draws: dict[str, list[float]] = {}
        held = self.all_real[~docs.fitted[self.all_real]]
        lengths = docs.tokens.lengths()
        for _ in range(self.options.draws):
            pick = rng.choice(real_rows, size=min(2 * block, len(real_rows)), replace=False)
            values = self.block_measures(pick[:block], pick[block : 2 * block])
            # tails: pages the reference never saw, fewer of them than pages (one in HOLDOUT)
            tails: dict[str, float] = {}
            if len(held) >= 5:
                # a bootstrap: drawn with replacement, each page read once, counted as drawn
                sample, counts = np.unique(rng.choice(held, size=block), return_counts=True)
                _, log_ppl, rare = self.own(sample)
                assert log_ppl is not None and rare is not None
                tails = tail_measures(np.repeat(log_ppl, counts), np.repeat(rare, counts))
            values = {k: v for k, v in values.items() if k not in TAILS} | tails
            order = rng.permutation(real_rows)
            enough = int(np.searchsorted(np.cumsum(lengths[order]), self.window)) + 1
            values.update(self.window_measures(order[:enough])[0])
            for k, v in values.items():
                draws.setdefault(k, []).append(v)
        band = {}
        for k, vs in draws.items():
            arr = np.asarray([v for v in vs if np.isfinite(v)])
            if len(arr):
                p5, p50, p95 = np.percentile(arr, [5, 50, 95])
                band[k] = {"p5": p5, "p50": p50, "p95": p95, "std": float(arr.std())}
        # the map's histograms show real pages' neighbours within real blocks of the same size
        docs.nn_similarity[real_rows] = np.nan
        order = rng.permutation(real_rows)
        for b in range(len(order) // block):
            members = order[b * block : (b + 1) * block]
            docs.nn_similarity[members] = semantic.nearest_similarity(docs.embeddings[members])
        return band


TAILS = ("ppl_p10", "ppl_p50", "ppl_p90", "ppl_spread", "rare_types")


def measure(
    docs: Documents,
    sets: Sequence[tuple[str, np.ndarray, float | None]],
    real_rows: np.ndarray,
    reference: ReferenceModel,
    *,
    by: str = "set",
    options: Options | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    task: Task | None = None,
) -> Report:
    """Measure ``sets`` (name, rows of ``docs``, x) against the real pages at ``real_rows``."""
    from threadpoolctl import threadpool_limits

    # the matrices here are small (a block of 200 x 256): BLAS threads only fight over the cores,
    # and on a busy machine a 256 x 256 eigendecomposition then takes a second instead of 5 ms
    with threadpool_limits(limits=1):
        return _measure(docs, sets, real_rows, reference, by, options, embed, task)


def _measure(
    docs: Documents,
    sets: Sequence[tuple[str, np.ndarray, float | None]],
    real_rows: np.ndarray,
    reference: ReferenceModel,
    by: str,
    options: Options | None,
    embed: Callable[[list[str]], np.ndarray] | None,
    task: Task | None,
) -> Report:
    from studio.diversity.alarms import diagnose
    from studio.diversity.projection import project_2d

    options = options or Options()
    task = task or Task()
    if len(real_rows) < 2 * options.min_docs:
        raise ValueError(
            f"the project has {plural(len(real_rows), 'real page')}: at least "
            f"{2 * options.min_docs} are "
            "needed as the baseline"
        )
    clock = _Clock()
    steps = 4 + len(sets)
    task.progress(0, steps, "reading words")
    vocab = prepare(docs, reference, task)
    words = np.asarray(vocab.words(), dtype=object)
    assert docs.tokens is not None
    clock.lap("words, reference model, openings, signatures")
    task.progress(1, steps, "finding topics")
    notes: list[str] = []
    block, window = _sizes(docs, sets, real_rows, options, notes)
    # topics are fitted on half the real pages and the band drawn from the other half: real
    # blocks drawn from the pages that placed the centroids spread over them more evenly than
    # any fresh sample does (with too few real pages, both use all of them)
    fit_rows, band_rows = real_rows[0::2], real_rows[1::2]
    if len(band_rows) < 2 * block or len(fit_rows) < 5 * options.topics:
        fit_rows = band_rows = real_rows
    topics = semantic.Topics.fit(docs.embeddings[fit_rows], options.topics, options.seed)
    docs.topic = topics.assign(docs.embeddings)
    docs.in_real = np.zeros(len(docs.ids), dtype=bool)
    docs.in_real[fit_rows] = True
    topics.name(docs.tokens.subset(real_rows), docs.topic[real_rows], vocab.words())
    clock.lap("topics")

    if embed is None:
        from studio.classify.features import StaticFeatures

        embed = StaticFeatures().embed
    measurer = Measurer(
        docs, band_rows, topics, words, block, window, options, embed, all_real=real_rows
    )
    task.progress(2, steps, "measuring the real pages")
    band = measurer.real_band()
    real = SetResult("real pages", docs.ids[real_rows].tolist(), rows=real_rows)
    real.metrics = {m: b["p50"] for m, b in band.items()}
    _describe(real, docs, real_rows, topics)
    clock.lap(f"real band ({options.draws} blocks and windows)")

    results = []
    for i, (name, rows, x) in enumerate(sets):
        task.check()
        task.progress(3 + i, steps, f"measuring {name}")
        result = SetResult(name, docs.ids[rows].tolist(), x, rows=rows)
        if len(rows) < options.min_docs:
            result.note = f"fewer than {options.min_docs} documents: not measured"
        else:
            measurer.measure_set(result, rows)
        _describe(result, docs, rows, topics)
        results.append(result)
    clock.lap("sets: every measure")
    task.progress(steps - 1, steps, "drawing the map")
    report = Report(by, block, window, real, band, results, topics.names, docs, notes=notes)
    report.coords, report.projection = project_2d(docs.embeddings, options.seed)
    clock.lap(f"2-D map ({report.projection})")
    report.alarms = diagnose(report)
    clock.lap("alarms")
    report.timings = clock.laps
    task.progress(steps, steps, "done")
    return report


class _Clock:
    def __init__(self) -> None:
        import time

        self.now = time.perf_counter
        self.last = self.now()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        t = self.now()
        self.laps[name] = t - self.last
        self.last = t


def _sizes(
    docs: Documents,
    sets: Sequence[tuple[str, np.ndarray, float | None]],
    real_rows: np.ndarray,
    options: Options,
    notes: list[str],
) -> tuple[int, int]:
    """The block (documents) and window (words) every set and the baseline are measured in."""
    assert docs.tokens is not None
    lengths = docs.tokens.lengths()
    sizable = [rows for _, rows, _ in sets if len(rows) >= options.min_docs]
    block = min([options.block, len(real_rows) // 2, *(len(r) for r in sizable)])
    words = [int(lengths[r].sum()) for r in sizable]
    window = min([options.window, int(lengths[real_rows].sum()) // 3, *words])
    if window < options.min_window:
        window = options.min_window
        notes.append(f"sets with fewer than {window} words have no lexical measures")
    return block, window


def _describe(
    result: SetResult, docs: Documents, rows: np.ndarray, topics: semantic.Topics
) -> None:
    """What a set is made of, whatever its size: topics, percentiles, openings, outlines."""
    assert docs.topic is not None and docs.log_ppl is not None
    result.topic_shares = topics.shares(docs.topic[rows]).tolist()
    lp = docs.log_ppl[rows]
    lp = lp[np.isfinite(lp)]
    if len(lp):
        qs = np.exp(np.percentile(lp, [10, 25, 50, 75, 90]))
        result.perplexity = dict(zip(("p10", "p25", "p50", "p75", "p90"), qs.tolist(), strict=True))
    ids = docs.ids[rows].tolist()
    result.openings = lexical.top_labels([docs.openings[r] for r in rows], ids)
    result.outlines = lexical.top_labels([docs.outlines[r] for r in rows], ids)
