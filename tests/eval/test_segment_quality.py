"""Quality gate for the segmenter on real pages (WCXB dev split in ../shared), with pinned floors.

Like trafilatura's tests/eval_gate.py: each floor is the figure measured when it was pinned,
less a margin for noise, so that a real regression fails CI and a harmless change does not.
The metric is WCXB's (bag-of-words F1 against ground_truth.main_content, mean over pages).

Two kinds of number, kept apart on purpose:

- *out-of-fold*: a small domain-grouped cross-validation trained here, on pages whose domains
  the model being scored never saw. This is the honest figure, and the one that catches a
  feature or label change that hurts generalisation. It needs LightGBM (a dev dependency).
- *in-sample*: the shipped model on pages it was trained on. It is optimistic by construction
  (the model saw these pages), so it only guards against breaking the run-time path (parsing,
  features, the numpy ensemble) or shipping a stale/broken model file.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from studio.segment import main_text
from studio.segment.corpus import page_ids, read_pages
from studio.segment.metric import word_prf

pytestmark = [pytest.mark.shared, pytest.mark.slow]

# every 5th page: 300 pages, all seven page types, ~260 domains
SUBSET_STEP = 5
# Measured when pinned (2026-11-22, model 2026-11-22): studio in-sample 0.906; trafilatura 0.822
# on the same pages. Floor: 0.02 below, about two standard errors of a 300-page mean (page F1
# sd ~0.2), so only a real break trips it.
IN_SAMPLE_FLOOR = 0.89
# the studio must stay clearly ahead of trafilatura on the same pages (0.084 when pinned; this is
# in-sample, so it is a smoke test of the lead, not its measure: the honest lead is the CV one)
MIN_LEAD_OVER_TRAFILATURA = 0.06
# Out-of-fold, 3 folds grouped by domain over the same 300 pages, 40 trees: 0.851 when pinned.
# Lower than the 5-fold figure on all 1,497 pages (0.864, see models/segmenter/MODEL_CARD.md)
# because each model trains on only 200 pages; the floor is 0.03 below (fold noise on 300 pages).
OUT_OF_FOLD_FLOOR = 0.815
# CPU time per page relative to trafilatura on the same pages, interleaved page by page as here:
# the benchmark reports the real ratio (3.73x interleaved, 3.95x with each extractor over all
# pages in turn, on wcxb-dev); a shared CI runner is noisy, so the gate asks for about half.
MIN_SPEEDUP = 2.0


@pytest.fixture(scope="module")
def corpus(shared_dir: Path) -> Path:
    path = shared_dir / "corpora" / "wcxb-dev"
    if not (path / "html").is_dir():
        pytest.skip(f"WCXB dev split not found at {path}")
    return path


@pytest.fixture(scope="module")
def subset(corpus: Path) -> list[str]:
    return page_ids(corpus)[::SUBSET_STEP]


def test_shipped_model_floor_and_lead_over_trafilatura(corpus: Path, subset: list[str]) -> None:
    trafilatura = pytest.importorskip("trafilatura")
    from studio.bench.segment import trafilatura_extract

    ours, theirs = [], []
    cpu_ours = cpu_theirs = 0.0
    for page in read_pages(corpus, subset):
        t = time.process_time()
        text = main_text(page.html, page.url)
        cpu_ours += time.process_time() - t
        ours.append(word_prf(text, page.main_content)[2])
        t = time.process_time()
        text = trafilatura_extract(page.html, page.url)
        cpu_theirs += time.process_time() - t
        theirs.append(word_prf(text, page.main_content)[2])
    f1, ref = float(np.mean(ours)), float(np.mean(theirs))
    print(f"in-sample F1 {f1:.4f}, trafilatura {trafilatura.__version__} {ref:.4f}")
    n = len(subset)
    print(f"CPU s/page: studio {cpu_ours / n:.4f}, trafilatura {cpu_theirs / n:.4f}")
    assert f1 >= IN_SAMPLE_FLOOR
    assert f1 - ref >= MIN_LEAD_OVER_TRAFILATURA
    assert cpu_theirs / cpu_ours >= MIN_SPEEDUP


def test_out_of_fold_floor(corpus: Path, subset: list[str]) -> None:
    pytest.importorskip("lightgbm")
    from studio.segment import train

    pages = train.load_pages(corpus, subset, jobs=1)
    cfg = train.TrainConfig(trees=40, learning_rate=0.2, threads=2)
    probs = train.cross_validate(pages, 3, cfg)
    f1 = float(train.page_scores(pages, probs)[:, 2].mean())
    print(f"out-of-fold F1 (3 folds by domain, {len(pages)} pages): {f1:.4f}")
    assert f1 >= OUT_OF_FOLD_FLOOR


def test_both_ways_to_the_main_text_agree_on_real_pages(corpus: Path, subset: list[str]) -> None:
    """``main_text`` (no Block objects, the import's and benchmark's path) and the blocks'
    ``join_main_text`` (what the document view shows, and what a correction stores) give the
    same text, tables and programs included."""
    from studio.segment import join_main_text, segment_html

    pages = read_pages(corpus, subset[:100])
    laid_out = 0
    for page in pages:
        blocks = segment_html(page.html, page.url)
        assert main_text(page.html, page.url) == join_main_text(blocks), page.page_id
        laid_out += any(b.tag in ("pre", "td", "th") and b.is_signal for b in blocks)
    assert laid_out >= 5  # the pages hold tables and programs to lay out
