"""Parquet: batches of only the needed columns, one document per row."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from studio.ingest.base import IngestError, RecordError
from studio.ingest.records import RecordProblem, document_from_record, no_text_field, record_columns
from studio.ingest.source import Item, ReadContext, Source

# rows per batch: documents can be large, so memory is this many documents, not a row group
BATCH_ROWS = 64


class ParquetReader:
    def read(self, source: Source, ctx: ReadContext) -> Iterator[Item]:
        try:
            parquet = pq.ParquetFile(source.stream)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"not a readable Parquet file ({exc})") from exc
        columns = self._columns(parquet, ctx)
        try:
            yield from self._rows(parquet, columns, source, ctx)
        except (pa.ArrowException, OSError) as exc:
            raise IngestError(f"corrupt Parquet data ({exc})") from exc

    def _columns(self, parquet: pq.ParquetFile, ctx: ReadContext) -> list[str]:
        names = parquet.schema_arrow.names
        options = ctx.options
        if not any(name in names for name in options.html_fields + options.text_fields):
            raise IngestError(
                f"no text column ({no_text_field(options)}); the file has {', '.join(names)}"
            )
        return record_columns(names, options)

    def _rows(
        self, parquet: pq.ParquetFile, columns: list[str], source: Source, ctx: ReadContext
    ) -> Iterator[Item]:
        row = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            for record in _batch_records(batch):
                ctx.checkpoint()
                locator = source.locate(row=row)
                try:
                    yield document_from_record(record, ctx.options, locator)
                except RecordProblem as exc:
                    yield RecordError(f"row {row}: {exc}", locator)
                row += 1


def _batch_records(batch: pa.RecordBatch) -> list[dict[str, object]]:
    """Rows as dicts, strings left as bytes: one row's invalid UTF-8 must not sink its batch."""
    columns = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_string(column.type):
            column = column.view(pa.binary())
        elif pa.types.is_large_string(column.type):
            column = column.view(pa.large_binary())
        columns[name] = column.to_pylist()
    return [
        dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)
    ]
