"""A synthetic project of N documents, for measuring the studio at scale (``studio bench ui``).

Documents are short HTML pages of pseudo-words drawn from a Zipf distribution, so that searches
match anything from a handful to most of the corpus, as on real text.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from studio.progress import Task
from studio.project import Project
from studio.store import now

SYLLABLES = [
    "ka",
    "to",
    "ri",
    "me",
    "su",
    "na",
    "lo",
    "pe",
    "vi",
    "da",
    "go",
    "hu",
    "mi",
    "re",
    "zo",
    "ta",
    "ne",
    "shi",
    "ku",
    "ba",
]
REAL_WORDS = [
    "water",
    "energy",
    "cell",
    "carbon",
    "dioxide",
    "light",
    "plant",
    "oxygen",
    "sugar",
    "photosynthesis",
]
BATCH = 5000


def vocabulary(rng: np.random.Generator, size: int = 20000) -> list[str]:
    words = list(REAL_WORDS)
    seen = set(words)
    while len(words) < size:
        w = "".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 5))))
        if w not in seen:
            seen.add(w)
            words.append(w)
    return words


def build(root: Path, n_docs: int, task: Task | None = None, seed: int = 0) -> Project:
    """Create (or reuse, when it already holds ``n_docs``) a project of synthetic documents."""
    task = task or Task()
    project = Project.open(root)
    with project.store() as store:
        if store.get_meta("synthetic_docs") == str(n_docs):
            return project
        if store.totals()["documents"]:
            raise ValueError(f"{root} already holds other documents; choose an empty folder")
        rng = np.random.default_rng(seed)
        words = np.array(vocabulary(rng))
        ranks = np.arange(1, len(words) + 1)
        p = 1.0 / ranks
        p /= p.sum()
        conn = store.conn
        import_id = store.begin_import()
        source_id = store.add_source(import_id, "synthetic://bench", None, None, "synthetic")
        stamp = now()
        for start in range(0, n_docs, BATCH):
            task.check()
            count = min(BATCH, n_docs - start)
            lengths = rng.integers(30, 250, size=count)
            drawn = rng.choice(len(words), size=int(lengths.sum()), p=p)
            docs, raws, texts, offset = [], [], [], 0
            for i, n in enumerate(lengths):
                doc_id = start + i + 1
                body = " ".join(words[drawn[offset : offset + n]])
                offset += n
                title = " ".join(words[drawn[offset - n : offset - n + 5]]).capitalize()
                page = (
                    f"<html><head><title>{title}</title></head><body><nav><a href='/'>Home</a> "
                    f"<a href='/a'>Archive</a></nav><article><h1>{title}</h1><p>{body}</p>"
                    f"</article><footer>Copyright synthetic</footer></body></html>"
                )
                digest = hashlib.blake2b(page.encode(), digest_size=16).hexdigest()
                nw = int(n) + 9
                docs.append(
                    (
                        doc_id,
                        source_id,
                        digest,
                        "html",
                        f"https://example.org/{doc_id}",
                        title,
                        json.dumps({"row": doc_id - 1}),
                        "en",
                        0.9,
                        len(page),
                        nw,
                        int(n) + 5,
                        (int(n) + 5) / nw,
                        "synthetic",
                        stamp,
                    )
                )
                raws.append((doc_id, zlib.compress(page.encode(), 1)))
                texts.append((doc_id, title, f"{title}\n\n{body}"))
            with store.transaction():
                conn.executemany(
                    "INSERT INTO documents(id, source_id, content_hash, kind, url, title, locator,"
                    " lang, lang_score, n_bytes, n_words, signal_words, signal_share, segmenter,"
                    " imported_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    docs,
                )
                conn.executemany("INSERT INTO document_raw(doc_id, raw) VALUES (?, ?)", raws)
                conn.executemany(
                    "INSERT INTO document_text(doc_id, title, main_text) VALUES (?, ?, ?)", texts
                )
                conn.executemany(
                    "INSERT INTO document_fts(rowid, title, main_text) VALUES (?, ?, ?)", texts
                )
            task.progress(start + count, n_docs, "building synthetic corpus")
        store.finish_source(source_id, status="imported", imported=n_docs)
        store.finish_import(import_id, "done")
        conn.execute("INSERT INTO document_fts(document_fts) VALUES ('optimize')")
        store.set_meta("synthetic_docs", str(n_docs))
    return project
