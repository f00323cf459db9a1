"""The filtering funnel: how many documents and main-text words survive each stage.

imported (exact duplicates skipped at import) -> in the chosen language -> without
near-duplicates -> without benchmark overlap -> kept by a classifier version. A stage that was
not asked for (no language) or cannot be told yet (no version has scored, dedup or
decontamination never ran) is left out. Every figure is one SQL aggregate, so a million
documents cost a few index scans, never a pass in Python.

Example::

    with project.store() as store:
        print(funnel(store, lang="en").text)
    # imported 1,497 files → 1,495 documents (2 exact duplicates removed) → 1,487 in en
    #   → 229 kept by 0008-tfidf-logistic: 15% of documents, 16% of words survive
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from studio.classify.versions import version_info
from studio.dedup.gate import gate_stages
from studio.store import Store


@dataclass(frozen=True, slots=True)
class Stage:
    name: str  # imported | language | near_duplicates | decontamination | quality
    label: str  # how the stage reads in the funnel line
    documents: int
    words: int  # signal (main-text) words


@dataclass(frozen=True, slots=True)
class Funnel:
    files: int  # source files that contributed records
    records: int  # records read from them: documents plus exact duplicates
    duplicates: int  # exact duplicates skipped at import
    stages: list[Stage] = field(default_factory=list)
    lang: str | None = None
    version: str | None = None
    scored: int | None = None  # documents the version has scored (all of them, normally)

    @property
    def documents(self) -> int:
        return self.stages[0].documents

    @property
    def words(self) -> int:
        return self.stages[0].words

    @property
    def document_share(self) -> float:
        return self.stages[-1].documents / self.documents if self.documents else 0.0

    @property
    def word_share(self) -> float:
        return self.stages[-1].words / self.words if self.words else 0.0

    @property
    def text(self) -> str:
        source = f"{self.files:,} files"
        if self.records != self.files:
            source = f"{self.records:,} records from {source}"
        first = f"{self.documents:,} documents ({self.duplicates:,} exact duplicates removed)"
        parts = [f"imported {source}", first]
        parts += [f"{s.documents:,} {s.label}" for s in self.stages[1:]]
        line = " → ".join(parts)
        if len(self.stages) > 1:
            line += (
                f": {self.document_share:.0%} of documents, {self.word_share:.0%} of words survive"
            )
        if self.version is not None and self.scored is not None and self.scored < self.documents:
            line += f" ({self.version} has scored {self.scored:,} of {self.documents:,})"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "document_share": self.document_share,
            "word_share": self.word_share,
            "text": self.text,
        }


def funnel(
    store: Store,
    *,
    version: str | None = None,
    lang: str | None = None,
    threshold: float | None = None,
    quality: bool = True,
) -> Funnel:
    """The funnel over the project. ``version``: the classifier whose keep decision makes the
    last stage (default: the newest version that has scored anything; ``quality=False`` leaves
    the stage out); ``threshold``: keep by ``score >= threshold`` instead. Raises LookupError
    for a version that does not exist."""
    c = store.conn
    files, kept_records, duplicates = c.execute(
        "SELECT count(DISTINCT CASE WHEN imported + duplicates > 0 THEN path END), "
        "coalesce(sum(imported), 0), coalesce(sum(duplicates), 0) FROM sources"
    ).fetchone()
    totals = store.totals()
    stages = [Stage("imported", "documents", totals["documents"], totals["signal_words"])]
    if lang is not None:
        n, words = c.execute(
            "SELECT count(*), coalesce(sum(signal_words), 0) FROM documents WHERE lang = ?",
            (lang,),
        ).fetchone()
        stages.append(Stage("language", f"in {lang}", n, words))
    in_lang = "" if lang is None else " AND d.lang = :lang"
    for name, label, dropped in gate_stages(store):  # near-duplicates, benchmark overlap
        in_lang += f" AND NOT {dropped}"
        n, words = c.execute(
            f"SELECT count(*), coalesce(sum(d.signal_words), 0) FROM documents d WHERE 1{in_lang}",
            {"lang": lang},
        ).fetchone()
        stages.append(Stage(name, label, n, words))
    scored = None
    if not quality:
        version = None
    elif version is None:
        version = store.latest_scored_version()
    else:
        version = version_info(store, version).version  # checked: LookupError names the known
    if version is not None:
        keep = "s.keep = 1" if threshold is None else "s.score >= :min"
        n, words = c.execute(
            f"SELECT count(*), coalesce(sum(d.signal_words), 0) FROM classifier_scores s "
            f"JOIN documents d ON d.id = s.doc_id WHERE s.version = :v AND {keep}{in_lang}",
            {"v": version, "min": threshold, "lang": lang},
        ).fetchone()
        scored = c.execute(
            "SELECT count(*) FROM classifier_scores WHERE version = ?", (version,)
        ).fetchone()[0]
        by = version if threshold is None else f"{version} at score>={threshold:g}"
        stages.append(Stage("quality", f"kept by {by}", n, words))
    return Funnel(
        files=files,
        records=kept_records + duplicates,
        duplicates=duplicates,
        stages=stages,
        lang=lang,
        version=version,
        scored=scored,
    )
