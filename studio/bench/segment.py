"""Benchmark: the studio's segmenter against trafilatura, same pages, same metric, same run.

Quality is WCXB's metric (bag-of-words F1 of the extracted text against
``ground_truth.main_content``, per page, averaged over pages); speed is pages per CPU second
(``time.process_time``), parsing included, one page at a time in this process, measured two
ways in the same run:

- *in turn* (the headline figure): each extractor runs over all pages by itself, the studio
  first, then trafilatura, as a corpus is processed in practice;
- *interleaved*: both extractors on each page before the next page (the quality pass). Each
  then runs with caches the other has just filled with its own data, which costs the smaller,
  faster extractor more (about 8 % of the studio's speed on wcxb-dev, ~3 % of trafilatura's).

Without ``cv`` the shipped model is measured; when the corpus is the one it was trained on the
table says the figure is in-sample. With ``cv=K`` (needs LightGBM) the studio's figures are
out-of-fold: K models, each trained on the other folds' domains (its speed is still measured
with the shipped model, as that is what runs).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from studio.segment.corpus import domain_folds, fingerprint, page_ids, read_pages
from studio.segment.metric import word_prf

Progress = Callable[[int, int, str], None]

# trafilatura 2.x defaults, except comments: WCXB's ground truth leaves reader comments out, and
# trafilatura scores higher without them (0.823 vs 0.817 F1 on wcxb-dev), so this is its better
# configuration here. Fallback extractors (readability, jusText) stay on, as by default.
TRAFILATURA_OPTIONS = {"include_comments": False}


def trafilatura_extract(html: bytes | str, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS) or ""


def run(
    corpus: Path,
    limit: int | None = None,
    cv: int = 0,
    progress: Progress | None = None,
) -> dict:
    """Measure both extractors on the corpus; returns a JSON-ready dict (see format_table)."""
    import trafilatura

    from studio.segment.segmenter import default_segmenter

    corpus = Path(corpus)
    ids = page_ids(corpus)[:limit] if limit else page_ids(corpus)
    if not ids:
        raise ValueError(f"{corpus} holds no pages (html/NNNN.html.gz with ground-truth/NNNN.json)")
    if cv > len(ids):
        raise ValueError(f"{cv} folds need at least {cv} pages; {len(ids):,} are measured")
    seg = default_segmenter()
    rows: dict[str, list] = {"studio": [], "trafilatura": []}
    cpu = {"studio": 0.0, "trafilatura": 0.0}
    types, domains = [], []
    for n, page in enumerate(read_pages(corpus, ids)):
        t = time.process_time()
        try:
            ours = seg.main_text(page.html, page.url)
        except ValueError:  # SegmentError: scored as an empty extraction
            ours = ""
        cpu["studio"] += time.process_time() - t
        t = time.process_time()
        theirs = trafilatura_extract(page.html, page.url)
        cpu["trafilatura"] += time.process_time() - t
        rows["studio"].append(word_prf(ours, page.main_content))
        rows["trafilatura"].append(word_prf(theirs, page.main_content))
        types.append(page.page_type)
        domains.append(page.domain)
        if progress and (n + 1) % 25 == 0:
            progress(n + 1, len(ids), "extracting")
    if cv > len(set(domains)):  # every page of a domain is in one fold
        raise ValueError(
            f"{cv} folds need pages of at least {cv} domains; these have {len(set(domains))}"
        )
    scores = {k: np.array(v) for k, v in rows.items()}
    interleaved = dict(cpu)
    # the quality pass has filled both extractors' memo caches with these very pages: empty
    # them, so that the timing pass sees each page as new, as the interleaved pass did
    from trafilatura.meta import reset_caches

    from studio.segment.hints import clear_caches

    clear_caches()
    reset_caches()
    cpu = {"studio": 0.0, "trafilatura": 0.0}
    extractors = (("studio", seg.main_text), ("trafilatura", trafilatura_extract))
    for name, extract in extractors:
        for n, page in enumerate(read_pages(corpus, ids)):
            t = time.process_time()
            with contextlib.suppress(ValueError):  # SegmentError, as above
                extract(page.html, page.url)
            cpu[name] += time.process_time() - t
            if progress and (n + 1) % 25 == 0:
                progress(n + 1, len(ids), f"timing {name}")
    meta = seg.meta
    trained_on = meta.get("training_corpus", {})
    in_sample = _same_corpus(corpus, trained_on)
    studio_mode = "in-sample (shipped model, trained on this corpus)" if in_sample else "held-out"
    if cv:
        from studio.segment import train

        pages = train.load_pages(corpus, ids, jobs=1)
        cfg = train.TrainConfig()
        probs = train.cross_validate(pages, cv, cfg, progress)
        scores["studio"] = train.page_scores(pages, probs)
        studio_mode = f"out-of-fold, {cv}-fold CV grouped by domain"
    return {
        "corpus": str(corpus),
        "pages": len(ids),
        "metric": "bag-of-words word F1 vs ground_truth.main_content, mean over pages",
        "speed": "pages per CPU second (time.process_time), parsing included, one process;"
        " each extractor over all pages in turn (interleaved: both on each page in turn)",
        "studio": {
            "model_version": seg.version,
            "mode": studio_mode,
            **_summary(scores["studio"], types, cpu["studio"], interleaved["studio"]),
        },
        "trafilatura": {
            "version": trafilatura.__version__,
            "call": f"trafilatura.extract(html, url=url, {_kwargs(TRAFILATURA_OPTIONS)})",
            **_summary(
                scores["trafilatura"], types, cpu["trafilatura"], interleaved["trafilatura"]
            ),
        },
        "domains": len(set(domains)),
        "cv_folds": cv,
        "fold_sizes": _fold_sizes(domains, cv) if cv else None,
    }


def _kwargs(options: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in options.items())


def _fold_sizes(domains: list[str], k: int) -> list[int]:
    folds = domain_folds(domains, k)
    return [folds.count(i) for i in range(k)]


def _same_corpus(corpus: Path, trained_on: dict) -> bool:
    if not trained_on:
        return False
    fp = trained_on.get("fingerprint")
    if fp:
        return fp == fingerprint(corpus)
    return trained_on.get("name") == corpus.resolve().name


def _summary(scores: np.ndarray, types: list[str], cpu: float, cpu_interleaved: float) -> dict:
    n = len(scores)
    out = {
        "f1": round(float(scores[:, 2].mean()), 4) if n else 0.0,
        "precision": round(float(scores[:, 0].mean()), 4) if n else 0.0,
        "recall": round(float(scores[:, 1].mean()), 4) if n else 0.0,
        "cpu_seconds": round(cpu, 2),
        "pages_per_second": round(n / cpu, 1) if cpu else None,
        "cpu_seconds_interleaved": round(cpu_interleaved, 2),
        "pages_per_second_interleaved": round(n / cpu_interleaved, 1) if cpu_interleaved else None,
        "by_type": {},
    }
    t = np.array(types)
    for name in sorted(set(types)):
        sel = scores[t == name]
        out["by_type"][name] = {"pages": len(sel), "f1": round(float(sel[:, 2].mean()), 4)}
    return out


def format_table(result: dict) -> str:
    """The result as a small text table, studio and trafilatura side by side."""
    s, t = result["studio"], result["trafilatura"]
    lines = [
        f"corpus {result['corpus']}: {result['pages']} pages, {result['domains']} domains",
        f"metric: {result['metric']}",
        f"speed: {result['speed']}",
        "",
        f"{'':14}{'studio':>12}{'trafilatura':>14}{'delta':>9}",
    ]
    for key in ("f1", "precision", "recall"):
        lines.append(f"{key:14}{s[key]:>12.4f}{t[key]:>14.4f}{s[key] - t[key]:>+9.4f}")
    sp, tp = s["pages_per_second"] or 0.0, t["pages_per_second"] or 0.0
    ratio = f"{sp / tp:>8.2f}x" if tp else ""
    lines.append(f"{'pages/s (CPU)':14}{sp:>12.1f}{tp:>14.1f}{ratio}")
    si, ti = (
        s.get("pages_per_second_interleaved") or 0.0,
        t.get("pages_per_second_interleaved") or 0.0,
    )
    ratio = f"{si / ti:>8.2f}x" if ti else ""
    lines.append(f"{'  interleaved':14}{si:>12.1f}{ti:>14.1f}{ratio}")
    lines.append("")
    for name, row in s["by_type"].items():
        other = t["by_type"][name]["f1"]
        lines.append(f"  {name:14}{row['pages']:>5} pages  F1 {row['f1']:.4f}  vs {other:.4f}")
    lines.append("")
    lines.append(f"studio: model {s['model_version']}, {s['mode']}")
    lines.append(f"trafilatura {t['version']}: {t['call']}")
    return "\n".join(lines)
