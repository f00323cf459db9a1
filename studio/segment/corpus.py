"""Reading a WCXB-layout corpus: html/NNNN.html.gz, ground-truth/NNNN.json, metadata.json."""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(slots=True)
class Page:
    page_id: str
    html: bytes
    url: str | None
    main_content: str
    page_type: str
    domain: str


def page_ids(corpus: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in (corpus / "html").glob("*.html.gz"))


def read_pages(corpus: Path, ids: list[str] | None = None) -> Iterator[Page]:
    meta = _metadata(corpus)
    for pid in ids if ids is not None else page_ids(corpus):
        html = gzip.decompress((corpus / "html" / f"{pid}.html.gz").read_bytes())
        gt = json.loads((corpus / "ground-truth" / f"{pid}.json").read_text(encoding="utf-8"))
        info = meta.get(pid, {})
        page_type = info.get("page_type") or gt.get("_internal", {}).get("page_type", {}).get(
            "primary", "unknown"
        )
        url = gt.get("url")
        domain = info.get("domain") or _domain(url) or pid
        yield Page(pid, html, url, gt["ground_truth"].get("main_content") or "", page_type, domain)


def _metadata(corpus: Path) -> dict[str, dict]:
    path = corpus / "metadata.json"
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("files", {})


def _domain(url: str | None) -> str:
    if not url or "//" not in url:
        return ""
    host = url.split("//", 1)[1].split("/", 1)[0].lower()
    return host[4:] if host.startswith("www.") else host


def domain_folds(domains: list[str], k: int, seed: int = 0) -> list[int]:
    """A fold number per page such that all pages of a domain share a fold, folds ~equal in size.

    Domains are shuffled with a fixed seed, then the biggest go first to the emptiest fold.
    """
    sizes: dict[str, int] = {}
    for d in domains:
        sizes[d] = sizes.get(d, 0) + 1
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    order.sort(key=lambda d: -sizes[d])  # stable: ties keep the shuffled order
    load = [0] * k
    fold_of: dict[str, int] = {}
    for d in order:
        f = min(range(k), key=lambda i: load[i])
        fold_of[d] = f
        load[f] += sizes[d]
    return [fold_of[d] for d in domains]


def fingerprint(corpus: Path) -> str:
    """A short hash of the corpus's page ids and file sizes: tells the training corpus again."""
    h = hashlib.sha256()
    for pid in page_ids(corpus):
        h.update(pid.encode())
        h.update(str((corpus / "html" / f"{pid}.html.gz").stat().st_size).encode())
    return h.hexdigest()[:16]
