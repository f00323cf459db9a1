"""Near-duplicate detection: MinHash LSH over word shingles, clusters and kept documents."""
