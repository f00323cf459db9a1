"""The demo project: real pages from the WCXB development split, with the studio team's labels.

The labels ship in ``resources/labels/`` keyed by WCXB file id (never the page text): two
independent reads of every page, one file per read, so the demo carries two annotators and the
classifier learns from their mean. The pages are read from the corpus folder the curator points
at, so a demo needs that corpus on disk.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio import paths
from studio.ingest.pipeline import import_paths
from studio.progress import Task
from studio.project import Project

LABEL_FILES = ("wcxb-dev-edu.jsonl", "wcxb-dev-edu-second-read.jsonl")  # in resources/labels/
ANNOTATOR = "studio-team"


class DemoError(Exception):
    """The corpus folder is not what the demo needs."""


@dataclass(slots=True)
class DemoReport:
    project: str
    imported: int
    labelled: int  # pages
    labels: int  # label rows: a page read by two annotators has two
    missing: list[str]  # file ids with labels but no page in the corpus folder
    # labels the project already held for a page and annotator (a curator's edit, an earlier
    # demo): left as they are, never overwritten
    kept: int = 0
    # ground-truth files that could not be read: their pages are in, without a URL
    unreadable: list[str] = field(default_factory=list)
    # pages that could not be imported, each "name: why" (a page file broken or not HTML)
    failed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def shipped_labels() -> list[dict[str, Any]]:
    """Every shipped label row: the first read's, then the second read's."""
    rows = []
    for name in LABEL_FILES:
        text = paths.resource("labels", name).read_text("utf-8")
        rows += [json.loads(line) for line in text.splitlines() if line.strip()]
    return rows


def build_demo(root: Path, corpus: Path, task: Task | None = None) -> DemoReport:
    """Import the corpus's pages into the project at ``root`` and apply the shipped labels."""
    html_dir, truth_dir = corpus / "html", corpus / "ground-truth"
    if not html_dir.is_dir() or not truth_dir.is_dir():
        raise DemoError(f"{corpus} is not a WCXB corpus folder (html/ and ground-truth/ expected)")
    project = Project.open(root)
    with project.store() as store:
        report = import_paths(store, [html_dir], task=task)
        by_file = {
            name.split(".")[0]: doc_id for name, doc_id in store.documents_from_files().items()
        }
        labelled: set[int] = set()
        rows, kept, missing, unreadable = 0, 0, [], []
        held = store.label_keys()
        with store.transaction():
            for file_id, doc_id in by_file.items():
                truth = truth_dir / f"{file_id}.json"
                if not truth.exists():
                    continue
                url = _truth_url(truth)  # the page's URL is provenance the bare HTML lacks
                if url is None:
                    unreadable.append(truth.name)
                if not url:  # unreadable, or a page WCXB gives no URL (5 of its dev split)
                    continue
                store.conn.execute(
                    "UPDATE documents SET url = ? WHERE id = ? AND url IS NULL", (url, doc_id)
                )
            for label in shipped_labels():
                doc_id = by_file.get(label["file_id"])
                if doc_id is None:
                    missing.append(label["file_id"])
                    continue
                annotator = label.get("annotator", ANNOTATOR)
                if (doc_id, annotator) in held:
                    kept += 1
                else:
                    store.set_label(doc_id, annotator, label["score"], label["note"])
                labelled.add(doc_id)
                rows += 1
    missing = list(dict.fromkeys(missing))
    failed = [f"{Path(f.path).name}: {f.reason}" for f in report.failed_files]
    return DemoReport(
        str(project.root), report.imported, len(labelled), rows, missing, kept, unreadable, failed
    )


def _truth_url(path: Path) -> str | None:
    """The URL a WCXB ground-truth file gives its page ("" when it gives none); None when the
    file is unreadable."""
    try:
        url = json.loads(path.read_text("utf-8")).get("url")
    except (OSError, ValueError, AttributeError):  # not JSON, not UTF-8, not an object
        return None
    return url if isinstance(url, str) and url.strip() else ""
