"""Hand labelling: what to label next, the rubric beside the page, undo, and agreement.

A :class:`LabelSession` walks a queue of documents for one annotator; every score is stored
the moment it is given, so nothing is lost if the studio is killed. Undo restores what the
annotator's label for that document was before. Queues are random (or a search), or read a
scored classifier version: closest to its keep cut (active learning), a score band, or where
it disagrees with the labels. Each is one SQL query over ``classifier_scores`` with a LIMIT.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from studio import paths
from studio.classify.versions import VersionInfo, version_info
from studio.store import DocumentQuery, Store
from studio.store.queries import TEACHER_PREFIX, from_clause, label_mean, where_clause
from studio.text import INVISIBLE

RUBRIC_FILE = "rubric.md"
MAX_RUBRIC_BYTES = 32 * 1024  # a rubric is a page or two; past this only the start is shown
QUEUES = ("random", "search", "uncertainty", "band", "disagreement", "annotators")
# annotators whose scores for a page are this far apart send it back for adjudication
ANNOTATOR_GAP = 2
# a regressor this far from the mean label disagrees with it: more than a rubric step, and
# regressors shrink towards the mean, so two whole steps would rarely show up
DISAGREEMENT_GAP = 1.5


MAX_ANNOTATOR = 80


def annotator_problem(name: str, *, teacher_ok: bool = False) -> str | None:
    """Why a person cannot label under ``name``, or None. A label's annotator is how agreement
    and adjudication tell people apart, so it is a plain, short name: no control or direction
    characters, and never ``teacher:...``, which marks the scores a model gave (allowed with
    ``teacher_ok``: a label file exported from a project holds its teachers' rows too)."""
    if not name.strip():
        return "an annotator needs a name"
    if len(name) > MAX_ANNOTATOR:
        return f"an annotator's name is at most {MAX_ANNOTATOR} characters"
    if INVISIBLE.search(name):
        return "an annotator's name cannot hold control or text-direction characters"
    if not teacher_ok and name.strip().lower().startswith(TEACHER_PREFIX):
        return f"names starting with {TEACHER_PREFIX!r} are the teachers' (models'), not people's"
    return None


def rubric_text(project_root: Path | None) -> str:
    """The project's own rubric (``rubric.md`` in the project folder) or the shipped one.

    A project's rubric is a file curators edit with any editor: one that is not UTF-8 is read
    with its unreadable bytes shown as U+FFFD and a note that says so, and one that cannot be
    read at all gives way to the shipped rubric with a note; neither stops the project opening.
    """
    own = project_root / RUBRIC_FILE if project_root is not None else None
    if own is None or not own.is_file():
        return _shipped_rubric()
    try:
        with own.open("rb") as fh:
            data = fh.read(MAX_RUBRIC_BYTES + 1)
    except OSError as exc:
        return (
            f"*This project's {RUBRIC_FILE} cannot be read ({exc.strerror or exc}): the "
            f"studio's own rubric is shown.*\n\n{_shipped_rubric()}"
        )
    cut = ""
    if len(data) > MAX_RUBRIC_BYTES:  # a rubric is a page; a megabyte froze the Label tab
        data = data[:MAX_RUBRIC_BYTES]
        cut = (
            f"*This project's {RUBRIC_FILE} is longer than a rubric ({MAX_RUBRIC_BYTES // 1024} "
            "KB): only its start is shown.*\n\n"
        )
    try:
        return cut + data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(data) - 3:  # the cut fell inside a character
            return cut + data.decode("utf-8-sig", errors="ignore")
        return (
            f"{cut}*This project's {RUBRIC_FILE} is not UTF-8 text: the characters that could "
            f"not be read show as \ufffd. Save it as UTF-8 to fix it.*\n\n"
            + data.decode("utf-8", errors="replace")
        )


def _shipped_rubric() -> str:
    return paths.resource(RUBRIC_FILE).read_text("utf-8")


def queue_ids(
    store: Store,
    annotator: str,
    query: DocumentQuery | None = None,
    seed: int = 0,
    limit: int = 100_000,
    *,
    strategy: str = "random",
    version: str | None = None,
    band: tuple[float, float] | None = None,
    gap: float = DISAGREEMENT_GAP,
    threshold: float = 3.0,
) -> list[int]:
    """The documents to label next, ``limit`` at most, narrowed by ``query``.

    ``random`` and ``search``: what this annotator has not labelled, in a seeded random order.
    The others read a classifier version's scores (``version``, default the latest):
    ``uncertainty``, unlabelled by this annotator, closest to the version's keep cut first;
    ``band``, scores in ``band`` = (lo, hi), in a seeded random order; ``disagreement``, labelled
    documents the classifier disagrees with, widest first (regressors: the predicted score at
    least ``gap`` from the mean label; logistic: keep decision against mean label >= threshold).
    ``annotators`` needs no classifier: pages whose annotators' scores are ANNOTATOR_GAP or
    more apart, or on both sides of the keep ``threshold`` (a 2 and a 3), widest first, for a
    second look.
    """
    query = query or DocumentQuery()
    if strategy in ("random", "search"):
        return _random_queue(store, annotator, query, seed, limit)
    if strategy not in QUEUES:
        raise ValueError(f"unknown queue {strategy!r} (known: {', '.join(QUEUES)})")
    within, within_args = _query_filter(query)
    if strategy == "annotators":
        sql = (
            f"SELECT s.doc_id FROM labels s WHERE 1 = 1{within} GROUP BY s.doc_id "
            "HAVING max(s.score) - min(s.score) >= ? OR (min(s.score) < ? AND max(s.score) >= ?) "
            "ORDER BY max(s.score) - min(s.score) DESC, s.doc_id LIMIT ?"
        )
        rows = store.conn.execute(sql, [*within_args, ANNOTATOR_GAP, threshold, threshold, limit])
        return [int(r[0]) for r in rows]
    info = _scored_version(store, version)
    if strategy == "uncertainty":
        sql = (
            "SELECT s.doc_id FROM classifier_scores s WHERE s.version = ? AND NOT EXISTS "
            "(SELECT 1 FROM labels l WHERE l.doc_id = s.doc_id AND l.annotator = ?)"
            f"{within} ORDER BY abs(s.score - ?), s.doc_id LIMIT ?"
        )
        args = [info.version, annotator, *within_args, info.cut, limit]
    elif strategy == "band":
        lo, hi = _checked_band(band)
        sql = (
            "SELECT s.doc_id FROM classifier_scores s WHERE s.version = ? "
            f"AND s.score BETWEEN ? AND ?{within} ORDER BY {seeded_rank(seed)}, s.doc_id LIMIT ?"
        )
        args = [info.version, lo, hi, *within_args, limit]
    else:
        sql, args = _disagreement_sql(info, gap, within, within_args, limit)
    return [int(r[0]) for r in store.conn.execute(sql, args)]


def _random_queue(
    store: Store, annotator: str, query: DocumentQuery, seed: int, limit: int
) -> list[int]:
    """Unlabelled (by this annotator) documents matching ``query`` in a seeded random order,
    drawn from the whole corpus in SQL (not from its first ``limit`` documents)."""
    where, args = where_clause(query)
    unlabelled = "NOT EXISTS (SELECT 1 FROM labels l WHERE l.doc_id = d.id AND l.annotator = ?)"
    where = f"{where} AND {unlabelled}" if where else f" WHERE {unlabelled}"
    rank = seeded_rank(seed, "d.id")
    sql = f"SELECT d.id FROM {from_clause(query)}{where} ORDER BY {rank}, d.id LIMIT ?"
    return [int(r[0]) for r in store.conn.execute(sql, [*args, annotator, limit])]


SCORE_HOW = "the Classifier tab's Score the corpus, or `studio score PROJECT`"


def _scored_version(store: Store, version: str | None) -> VersionInfo:
    try:
        info = version_info(store, version)
    except LookupError as exc:
        raise ValueError(f"{exc.args[0]}; then score the corpus with it ({SCORE_HOW})") from exc
    if info.scored == 0:
        raise ValueError(
            f"classifier {info.version} has scored no documents: "
            f"score the corpus with a classifier first ({SCORE_HOW})"
        )
    return info


def _query_filter(query: DocumentQuery) -> tuple[str, list[object]]:
    """``query`` as a condition on ``s.doc_id`` (nothing when it selects every document)."""
    where, args = where_clause(query)
    if not where:
        return "", []  # (a score join with no condition selects every document too)
    return f" AND s.doc_id IN (SELECT d.id FROM {from_clause(query)}{where})", list(args)


def _checked_band(band: tuple[float, float] | None) -> tuple[float, float]:
    if band is None:
        raise ValueError("the band queue needs a score band (lo, hi)")
    lo, hi = band
    if lo > hi:
        raise ValueError(f"empty score band: {lo:g} > {hi:g}")
    return float(lo), float(hi)


# 2**31 - 1 is prime, so x -> (a*x + b) mod P is a permutation; squaring the result breaks up
# the stride pattern an affine map leaves on consecutive ids. Every product stays below 2**62.
_P = 2_147_483_647


def seeded_rank(seed: int, column: str = "s.doc_id") -> str:
    """A SQL expression that orders ``column`` pseudo-randomly, the same way for a seed."""
    rng = random.Random(seed)
    a, b, c = rng.randrange(1, _P), rng.randrange(_P), rng.randrange(1, _P)
    x = f"((({column} % {_P}) * {a} + {b}) % {_P})"
    return f"((({x} * {x}) % {_P}) * {c} + {x}) % {_P}"


def _disagreement_sql(
    info: VersionInfo, gap: float, within: str, within_args: list[object], limit: int
) -> tuple[str, list[object]]:
    scored = (
        "SELECT s.doc_id, s.score, s.keep, m.label FROM classifier_scores s "
        f"JOIN (SELECT doc_id, {label_mean()} AS label FROM labels GROUP BY doc_id) m "
        f"ON m.doc_id = s.doc_id WHERE s.version = ?{within}"
    )
    args: list[object] = [info.version, *within_args]
    if info.predicts_score:
        width = "abs(score - label)"
        sql = f"SELECT doc_id FROM ({scored}) WHERE {width} >= ?"
        args.append(gap)
    else:
        # the curators' side (1 kept, 0 dropped); P(keep) far from it: sure of the wrong side
        width = "abs(score - (label >= ?))"
        sql = f"SELECT doc_id FROM ({scored}) WHERE keep != (label >= ?)"
        args += [info.threshold, info.threshold]
    return f"{sql} ORDER BY {width} DESC, doc_id LIMIT ?", [*args, limit]


@dataclass
class LabelSession:
    """One annotator working through a queue. ``position`` points at the current document."""

    store: Store
    annotator: str
    ids: list[int]
    position: int = 0
    given: int = 0
    _undo: list[tuple[int, int, int | None]] = field(default_factory=list)  # (pos, doc, old)

    @property
    def current(self) -> int | None:
        return self.ids[self.position] if 0 <= self.position < len(self.ids) else None

    def peek(self, offset: int = 1) -> int | None:
        i = self.position + offset
        return self.ids[i] if 0 <= i < len(self.ids) else None

    def score(self, value: int, at: int | None = None) -> int | None:
        """Store ``value`` for the current document (committed at once) and move on; returns
        the document scored (None at the end of the queue). ``at``: the queue position of the
        page the curator was shown when they gave it; the window shows the next page at the
        keypress, before this write runs, so the page shown decides, not where the writes
        queued behind a busy writer have got to."""
        if at is not None:
            self.position = at
        doc_id = self.current
        if doc_id is None:
            return None
        if not 0 <= value <= 5:
            raise ValueError(f"a score is 0 to 5, not {value}")
        if self.store.document(doc_id) is None:
            raise LookupError(
                f"page {doc_id} is no longer in the project (another program removed it): "
                "skip it with →"
            )
        self._undo.append((self.position, doc_id, self.store.label_of(doc_id, self.annotator)))
        self.store.set_label(doc_id, self.annotator, value)
        self.given += 1
        self.position += 1
        return doc_id

    def skip(self, at: int | None = None) -> None:
        if at is not None:
            self.position = at
        if self.position < len(self.ids):
            self.position += 1

    def back(self, at: int | None = None) -> None:
        if at is not None:
            self.position = at
        if self.position > 0:
            self.position -= 1

    def undo(self) -> bool:
        """Take back the last score given in this session; False when there is none."""
        if not self._undo:
            return False
        position, doc_id, old = self._undo.pop()
        if old is None:
            self.store.delete_label(doc_id, self.annotator)
        else:
            self.store.set_label(doc_id, self.annotator, old)
        self.given -= 1
        self.position = position
        return True


# -- agreement between annotators -----------------------------------------------------------------


@dataclass(slots=True)
class Agreement:
    a: str
    b: str
    shared: int
    kappa: float | None  # quadratic-weighted Cohen's kappa; None when undefined
    disagreements: list[tuple[int, int, int]]  # (doc id, a's score, b's score), widest first
    keep_kappa: float | None = None  # Cohen's kappa of the keep decision (score >= threshold)
    split: list[tuple[int, int, int]] = field(default_factory=list)  # one keeps, the other drops


def weighted_kappa(x: list[int], y: list[int], k: int = 6) -> float | None:
    """Cohen's kappa with quadratic weights for ordinal scores 0..k-1 (k=2: plain kappa)."""
    n = len(x)
    if n == 0:
        return None
    observed = [[0.0] * k for _ in range(k)]
    for i, j in zip(x, y, strict=True):
        observed[i][j] += 1
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            w = (i - j) ** 2 / (k - 1) ** 2
            num += w * observed[i][j]
            den += w * row[i] * col[j] / n
    return None if den == 0 else 1.0 - num / den


def agreement(store: Store, min_gap: int = 2, threshold: float = 3.0) -> list[Agreement]:
    """Kappa for every pair of annotators over the documents both labelled, the documents
    where their scores are ``min_gap`` or more apart, and the same for the keep decision at
    ``threshold``: a 2 against a 3 is one point on the scale but the whole decision."""
    by_annotator: dict[str, dict[int, int]] = {}
    for doc_id, annotator, score in store.conn.execute(
        "SELECT doc_id, annotator, score FROM labels"
    ):
        by_annotator.setdefault(annotator, {})[doc_id] = score
    out = []
    for a, b in combinations(sorted(by_annotator), 2):
        shared = sorted(set(by_annotator[a]) & set(by_annotator[b]))
        xa = [by_annotator[a][d] for d in shared]
        xb = [by_annotator[b][d] for d in shared]
        pairs = list(zip(shared, xa, xb, strict=True))
        gaps = [(d, sa, sb) for d, sa, sb in pairs if abs(sa - sb) >= min_gap]
        gaps.sort(key=lambda t: -abs(t[1] - t[2]))
        split = [(d, sa, sb) for d, sa, sb in pairs if (sa >= threshold) != (sb >= threshold)]
        keep_a = [int(s >= threshold) for s in xa]
        keep_b = [int(s >= threshold) for s in xb]
        out.append(
            Agreement(
                a,
                b,
                len(shared),
                weighted_kappa(xa, xb),
                gaps,
                weighted_kappa(keep_a, keep_b, k=2),
                split,
            )
        )
    return out
