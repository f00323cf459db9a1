"""Train the segmenter on a WCXB-layout corpus and write the shipped model (numpy arrays).

    python -m studio.segment.train --corpus ../shared/corpora/wcxb-dev --out models/segmenter

Steps: every page is segmented into blocks and featurised exactly as at run time; each block is
labelled from the ground truth (:mod:`studio.segment.labels`); a domain-grouped k-fold
cross-validation reports out-of-fold page F1 beside trafilatura's on the same pages; then the
model is fitted on all pages and exported with :mod:`studio.segment.model`.

LightGBM is needed here only; it is imported inside the functions that train.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from studio.segment import dom
from studio.segment.blocks import SegmentError
from studio.segment.corpus import Page, domain_folds, fingerprint, read_pages
from studio.segment.decode import choose_signal
from studio.segment.features import FEATURE_NAMES, PageFeatures
from studio.segment.features import page_features as featurise
from studio.segment.labels import SIGNAL_SHARE, match_share
from studio.segment.metric import word_prf
from studio.segment.model import from_lightgbm_dump
from studio.segment.segmenter import META_FILE, MODEL_FILE

Progress = Callable[[int, int, str], None]


@dataclass
class TrainConfig:
    trees: int = 60
    learning_rate: float = 0.15
    num_leaves: int = 63
    depth: int = 8  # every tree is stored as a complete tree of this depth
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.7
    bagging_fraction: float = 0.8
    lambda_l2: float = 1.0
    seed: int = 0
    threads: int = 2

    def lgb_params(self) -> dict:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.depth,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.threads,
            "verbose": -1,
        }


@dataclass
class PageData:
    """One training page: its blocks' features and labels, and what the metric needs."""

    page_id: str
    domain: str
    page_type: str
    main_content: str
    pf: PageFeatures | None
    y: np.ndarray | None  # block labels (1 = signal)


def _featurise_page(page: Page) -> PageData:
    try:
        root = dom.parse(page.html)
        pf = featurise(dom.walk(root)) if root is not None else None
    except SegmentError:
        pf = None
    y = None
    if pf is not None:
        y = (match_share(pf.texts, page.main_content) >= SIGNAL_SHARE).astype(np.float64)
    return PageData(page.page_id, page.domain, page.page_type, page.main_content, pf, y)


def load_pages(
    corpus: Path, ids: list[str] | None = None, jobs: int = 1, progress: Progress | None = None
) -> list[PageData]:
    """Featurise and label every page of the corpus (in ``jobs`` processes)."""
    pages = read_pages(corpus, ids)
    out: list[PageData] = []
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            for pd in pool.map(_featurise_page, pages, chunksize=16):
                out.append(pd)
                if progress and len(out) % 50 == 0:
                    progress(len(out), 0, "featurising")
    else:
        for page in pages:
            out.append(_featurise_page(page))
            if progress and len(out) % 50 == 0:
                progress(len(out), 0, "featurising")
    return out


def project_pages(root: Path) -> list[PageData]:
    """The pages a curator corrected in a studio project, as training pages: the blocks they
    relabelled as they labelled them, the others as the segmenter had them (the curator looked
    at the page and let those stand)."""
    from urllib.parse import urlparse

    from studio.documents import load_page
    from studio.project import Project
    from studio.segment.blocks import join_main_text

    out: list[PageData] = []
    with Project.open(root, create=False).store(readonly=True) as store:
        for doc_id in sorted({c["doc_id"] for c in store.segmentation_corrections()}):
            page = load_page(store, doc_id)  # blocks with the corrections applied
            parsed = dom.parse(page.raw) if page.blocks else None
            pf = featurise(dom.walk(parsed)) if parsed is not None else None
            if pf is None or len(pf.texts) != len(page.blocks):
                continue  # the page no longer segments as it did when it was corrected
            y = np.array([b.is_signal for b in page.blocks], dtype=np.float64)
            domain = urlparse(page.record.url or "").hostname or f"project:{root.name}"
            main = join_main_text(page.blocks)
            out.append(PageData(f"{root.name}#{doc_id}", domain, "curated", main, pf, y))
    return out


def _weights(pd: PageData) -> np.ndarray:
    # F1 is averaged over pages and counts words: every page weighs the same in training, and
    # within a page a block weighs by sqrt(words) (plain word counts let a few long blocks decide)
    w = np.sqrt(pd.pf.words + 1.0)
    return w / w.sum() * 300.0


def _train(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], cfg: TrainConfig):
    import lightgbm as lgb

    X = np.vstack([r[0] for r in rows])
    y = np.concatenate([r[1] for r in rows])
    w = np.concatenate([r[2] for r in rows])
    return lgb.train(cfg.lgb_params(), lgb.Dataset(X, y, weight=w), cfg.trees)


def fit(pages: list[PageData], cfg: TrainConfig):
    """A LightGBM booster fitted on every page that has blocks."""
    usable = [pd for pd in pages if pd.pf is not None]
    return _train([(pd.pf.X, pd.y, _weights(pd)) for pd in usable], cfg)


def cross_validate(
    pages: list[PageData], k: int, cfg: TrainConfig, progress: Progress | None = None
) -> list[np.ndarray | None]:
    """Out-of-fold P(signal) per page, folds grouped by domain (no domain in two folds)."""
    folds = domain_folds([pd.domain for pd in pages], k, cfg.seed)
    out: list[np.ndarray | None] = [None] * len(pages)
    for fold in range(k):
        if progress:
            progress(fold, k, f"cross-validation fold {fold + 1}/{k}")
        train = [pd for pd, f in zip(pages, folds, strict=True) if f != fold]
        model = fit(train, cfg)
        for i, (pd, f) in enumerate(zip(pages, folds, strict=True)):
            if f == fold and pd.pf is not None:
                out[i] = model.predict(pd.pf.X)
    if progress:
        progress(k, k, "cross-validation done")
    return out


def page_scores(pages: list[PageData], probs: list[np.ndarray | None]) -> np.ndarray:
    """(precision, recall, F1) per page of the blocks chosen as at run time."""
    rows = []
    for pd, p in zip(pages, probs, strict=True):
        if pd.pf is None or p is None:
            rows.append(word_prf("", pd.main_content))
            continue
        keep = choose_signal(p, pd.pf.words)[0].tolist()
        text = "\n\n".join(t for t, s in zip(pd.pf.texts, keep, strict=True) if s)
        rows.append(word_prf(text, pd.main_content))
    return np.array(rows)


def summarise(pages: list[PageData], scores: np.ndarray) -> dict:
    """Mean precision/recall/F1 over pages, overall and per page type."""
    types = np.array([pd.page_type for pd in pages])
    out = {"all": _means(scores, len(pages))}
    for t in sorted(set(types.tolist())):
        out[t] = _means(scores[types == t], int((types == t).sum()))
    return out


def _means(s: np.ndarray, n: int) -> dict:
    p, r, f = s.mean(axis=0) if len(s) else (0.0, 0.0, 0.0)
    return {"pages": n, "precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def export(model, cfg: TrainConfig, out: Path, meta: dict) -> None:
    """Write model.npz (plain arrays, no pickle) and meta.json."""
    out.mkdir(parents=True, exist_ok=True)
    ensemble = from_lightgbm_dump(model.dump_model(), cfg.depth)
    np.savez_compressed(out / MODEL_FILE, **ensemble.arrays(""))
    meta = {**meta, "features": FEATURE_NAMES, "config": asdict(cfg)}
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def trafilatura_scores(corpus: Path, pages: list[PageData]) -> tuple[np.ndarray, float]:
    """trafilatura's (P, R, F1) per page and its CPU seconds, on the same pages."""
    from studio.bench.segment import trafilatura_extract

    ids = [pd.page_id for pd in pages]
    rows = []
    cpu = 0.0
    for page in read_pages(corpus, ids):
        t = time.process_time()
        text = trafilatura_extract(page.html, page.url)
        cpu += time.process_time() - t
        rows.append(word_prf(text, page.main_content))
    return np.array(rows), cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m studio.segment.train",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--folds", type=int, default=5, help="domain-grouped CV folds (0: skip CV)")
    ap.add_argument("--jobs", type=int, default=2, help="processes for featurising")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pages")
    ap.add_argument("--no-trafilatura", action="store_true", help="skip the reference run")
    ap.add_argument("--version", default=None, help="model version (default: date)")
    ap.add_argument(
        "--corrections",
        type=Path,
        action="append",
        default=[],
        metavar="PROJECT",
        help="also learn from the pages curators corrected in this studio project (repeatable)",
    )
    args = ap.parse_args(argv)
    cfg = TrainConfig()

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t0 = time.time()
    ids = None
    if args.limit:
        from studio.segment.corpus import page_ids

        ids = page_ids(args.corpus)[: args.limit]
    pages = load_pages(args.corpus, ids, jobs=args.jobs)
    curated = [pd for root in args.corrections for pd in project_pages(root)]
    pages += curated
    n_blocks = sum(len(pd.y) for pd in pages if pd.y is not None)
    say(f"{len(pages)} pages, {n_blocks} blocks featurised in {time.time() - t0:.0f}s")
    metrics: dict = {}
    if args.folds:
        probs = cross_validate(pages, args.folds, cfg, lambda d, n, m: say(m))
        metrics["cv"] = summarise(pages, page_scores(pages, probs))
        metrics["cv"]["folds"] = args.folds
        metrics["cv"]["grouped_by"] = "domain"
        say(f"CV F1 {metrics['cv']['all']['f1']:.4f} ({time.time() - t0:.0f}s)")
        if not args.no_trafilatura:
            scores, _ = trafilatura_scores(args.corpus, pages)
            metrics["trafilatura"] = summarise(pages, scores)
            say(f"trafilatura F1 {metrics['trafilatura']['all']['f1']:.4f}")
    model = fit(pages, cfg)
    today = dt.date.today().isoformat()
    meta = {
        "name": "studio-segmenter",
        "version": args.version or f"{today}",
        "trained": today,
        "training_corpus": {
            "name": args.corpus.resolve().name,
            "pages": len(pages),
            "blocks": n_blocks,
            "fingerprint": fingerprint(args.corpus) if not args.limit else None,
            "curated_pages": len(curated),
        },
        "labels": f"block is signal when >= {SIGNAL_SHARE} of its word trigrams are in"
        " ground_truth.main_content (each trigram claimed once, document order)",
        "metrics": metrics,
        "credit": "Trained on WCXB, the Web Content eXtraction Benchmark (Murrough Foley),"
        " development split, CC-BY-4.0",
    }
    export(model, cfg, args.out, meta)
    say(f"model written to {args.out} in {time.time() - t0:.0f}s")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
