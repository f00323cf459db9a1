"""Running a step over many shards: local processes, or a Ray cluster."""
