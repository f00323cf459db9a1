"""Readers that turn dropped files into documents, by sniffing what each file really is.

for path in iter_input_files([Path("crawl/")]):
    for item in read_file(path):
        ...  # RawDocument, or RecordError for one bad record; IngestError for the file
"""

from studio.ingest.base import (
    HTML,
    TEXT,
    IngestError,
    IngestOptions,
    RawDocument,
    RecordError,
)
from studio.ingest.files import iter_input_files
from studio.ingest.reader import read_file
from studio.ingest.sniff import FORMATS, sniff_format

__all__ = [
    "FORMATS",
    "HTML",
    "TEXT",
    "IngestError",
    "IngestOptions",
    "RawDocument",
    "RecordError",
    "iter_input_files",
    "read_file",
    "sniff_format",
]
