"""The project database's schema, one migration at a time (never an ad-hoc ALTER)."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("studio")

# migrations whose work grows with the corpus (m010 rebuilds the search index: 97 s at a
# million pages): before one runs on a project that holds pages, the studio says so
SLOW = {"m010_search_prefixes": "rebuilding its search index"}


@migrations()
def m001_corpus(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);

        -- one row per import the curator started (a drop, a CLI call)
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'running'   -- running | done | cancelled | failed
        );

        -- one row per file an import looked at, with what happened to it
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            import_id INTEGER NOT NULL REFERENCES imports(id),
            path TEXT NOT NULL,
            size INTEGER,
            mtime REAL,
            format TEXT,
            status TEXT NOT NULL,   -- imported | failed | skipped | cancelled
            imported INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            reason TEXT,
            errors TEXT,            -- JSON list of per-record errors (capped)
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX sources_path ON sources(path);

        -- the list row of a document: small, so the corpus view stays fast at a million rows
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id),
            content_hash TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,           -- html | text
            url TEXT,
            title TEXT,
            fetch_date TEXT,
            locator TEXT,                 -- JSON: member, offset, record_id, line, row
            lang TEXT,
            lang_score REAL,
            n_bytes INTEGER NOT NULL,
            n_words INTEGER NOT NULL,
            signal_words INTEGER NOT NULL,
            signal_share REAL NOT NULL,
            segmenter TEXT,
            warnings TEXT,
            imported_at TEXT NOT NULL
        );
        CREATE INDEX documents_source ON documents(source_id);
        CREATE INDEX documents_words ON documents(n_words);
        CREATE INDEX documents_share ON documents(signal_share);
        CREATE INDEX documents_lang ON documents(lang);
        CREATE INDEX documents_kind ON documents(kind);
        CREATE INDEX documents_title ON documents(title);

        -- the page as it was imported, zlib-compressed
        CREATE TABLE document_raw (doc_id INTEGER PRIMARY KEY REFERENCES documents(id), raw BLOB);

        -- the extracted main text, and its full-text index
        CREATE TABLE document_text (
            doc_id INTEGER PRIMARY KEY REFERENCES documents(id),
            title TEXT,
            main_text TEXT
        );
        CREATE VIRTUAL TABLE document_fts USING fts5(
            title, main_text, content='document_text', content_rowid='doc_id',
            tokenize='unicode61 remove_diacritics 2'
        );

        -- a curator's correction of one block's label: shown on the page and kept as
        -- training data for the segmenter (the block's text is kept with it)
        CREATE TABLE block_corrections (
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            locator TEXT NOT NULL,
            text TEXT NOT NULL,
            label TEXT NOT NULL,          -- signal | boilerplate
            model_label TEXT NOT NULL,    -- what the segmenter had said
            features TEXT,                -- JSON: the features behind the model's label
            annotator TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (doc_id, locator)
        );
        """
    )


@migrations()
def m002_labels(db: Database) -> None:
    db.executescript(
        """
        -- a curator's judgement of one document: a rubric score (0-5) per annotator,
        -- committed the moment it is given
        CREATE TABLE labels (
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            annotator TEXT NOT NULL,
            score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 5),
            note TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (doc_id, annotator)
        );
        CREATE INDEX labels_annotator ON labels(annotator);
        -- label files made elsewhere name their pages by URL
        CREATE INDEX documents_url ON documents(url);
        """
    )


@migrations()
def m003_classifier(db: Database) -> None:
    db.executescript(
        """
        -- per-document features that need no fitting (hand features; embeddings later), keyed by
        -- the extractor's name and version so a changed extractor never reads stale vectors.
        -- Fitted features (TF-IDF) are not cached here: their vocabulary lives with the model.
        CREATE TABLE feature_cache (
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            feature_set TEXT NOT NULL,
            version TEXT NOT NULL,
            vector BLOB NOT NULL,          -- float32, little-endian
            PRIMARY KEY (feature_set, version, doc_id)
        );

        -- every trained educational-value classifier, with what it was trained on
        CREATE TABLE classifier_versions (
            id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            feature_set TEXT NOT NULL,
            model_kind TEXT NOT NULL,      -- ridge | logistic | forest
            threshold REAL NOT NULL,       -- keep when the score is at least this
            metrics TEXT NOT NULL,         -- JSON: cross-validated metrics of this combination
            label_hash TEXT NOT NULL,      -- sha256 of the sorted (doc_id, annotator, score)
            n_labels INTEGER NOT NULL,
            path TEXT NOT NULL             -- folder under the project, relative to its root
        );

        -- a classifier version's verdict on a document
        CREATE TABLE classifier_scores (
            version TEXT NOT NULL REFERENCES classifier_versions(id),
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            score REAL NOT NULL,           -- ridge, forest: the predicted score; logistic: P(keep)
            keep INTEGER NOT NULL,
            PRIMARY KEY (version, doc_id)
        );
        CREATE INDEX classifier_scores_doc ON classifier_scores(doc_id);
        """
    )


@migrations()
def m004_exports(db: Database) -> None:
    db.executescript(
        """
        -- every export of the kept documents, with what decided the keeping
        CREATE TABLE exports (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            path TEXT NOT NULL,
            format TEXT NOT NULL,          -- jsonl | parquet
            version TEXT,                  -- classifier version; NULL: every document exported
            threshold REAL,                -- keep threshold on the rubric score; NULL: no version
            kept INTEGER NOT NULL,
            dropped INTEGER NOT NULL
        );
        """
    )


@migrations()
def m005_score_order(db: Database) -> None:
    # the corpus view sorts and filters by one classifier version's scores
    db.execute("CREATE INDEX classifier_scores_order ON classifier_scores(version, score)")


@migrations()
def m006_export_reasons(db: Database) -> None:
    # why the dropped documents of each export were dropped, counted by reason (JSON)
    db.execute("ALTER TABLE exports ADD COLUMN dropped_by_reason TEXT")


@migrations()
def m007_generation(db: Database) -> None:
    db.executescript(
        """
        -- the project's topic taxonomy (subjects > topics > subtopics), seeded from the shipped
        -- one; a teacher's proposals wait as 'proposed' until a curator accepts or rejects them
        CREATE TABLE gen_taxonomy (
            id INTEGER PRIMARY KEY,
            subject TEXT NOT NULL,
            topic TEXT NOT NULL,
            subtopic TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'active',   -- active | proposed | rejected
            origin TEXT NOT NULL,                    -- shipped | imported | curator | a teacher
            created_at TEXT NOT NULL,
            UNIQUE (subject, topic, subtopic)
        );

        -- one generation batch: what was asked (JSON) and how far it got
        CREATE TABLE gen_batches (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL DEFAULT 'pending',  -- pending | running | done | cancelled
            config TEXT NOT NULL,
            source_id INTEGER REFERENCES sources(id) -- the source of its accepted pages
        );

        -- one page of a batch: its plan cell, its teacher, and where it ended
        CREATE TABLE gen_pages (
            id INTEGER PRIMARY KEY,
            batch_id INTEGER NOT NULL REFERENCES gen_batches(id),
            round INTEGER NOT NULL,
            cell TEXT NOT NULL,      -- "Subject / Topic / Subtopic | audience | style | difficulty"
            subject TEXT NOT NULL,
            topic TEXT NOT NULL,
            subtopic TEXT NOT NULL,
            audience TEXT NOT NULL,
            style TEXT NOT NULL,
            difficulty TEXT NOT NULL,
            teacher TEXT NOT NULL,
            seed_doc_id INTEGER REFERENCES documents(id),
            status TEXT NOT NULL DEFAULT 'pending',  -- pending|running|accepted|rejected|failed
            reasons TEXT,            -- JSON list: why it ended as it did
            title TEXT,
            text TEXT,               -- the page as it stands: the rewrite, or a curator's edit
            doc_id INTEGER REFERENCES documents(id),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX gen_pages_batch ON gen_pages(batch_id, status);
        CREATE INDEX gen_pages_cell ON gen_pages(cell, status);
        CREATE INDEX gen_pages_doc ON gen_pages(doc_id);

        -- every version of a page with its lineage: drafts, critiques, rewrite, checks, edits
        CREATE TABLE gen_versions (
            id INTEGER PRIMARY KEY,
            page_id INTEGER NOT NULL REFERENCES gen_pages(id),
            kind TEXT NOT NULL,      -- draft | critique | rewrite | checks | edit | decision
            n INTEGER NOT NULL DEFAULT 0,                    -- which best-of-K draft
            parent_id INTEGER REFERENCES gen_versions(id),   -- what it was made from
            teacher TEXT,
            prompt TEXT,             -- JSON: the messages sent
            sampling TEXT,           -- JSON: the sampling parameters
            text TEXT,               -- the reply, or the edited page
            data TEXT,               -- JSON: parsed critique, check results, decision
            finish_reason TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            seconds REAL,
            error TEXT,              -- why this step gave nothing usable
            created_at TEXT NOT NULL
        );
        CREATE INDEX gen_versions_page ON gen_versions(page_id, kind);
        """
    )


@migrations()
def m008_dedup(db: Database) -> None:
    db.executescript(
        """
        -- MinHash signatures of the documents' main texts, by the parameters that made them
        -- (method, hashes, n-gram, seed), so a re-run only hashes new documents
        CREATE TABLE dedup_signatures (
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            params TEXT NOT NULL,
            text_hash TEXT NOT NULL,       -- of the whitespace-normalised main text
            signature BLOB NOT NULL,       -- uint32, little-endian
            PRIMARY KEY (params, doc_id)
        );

        -- the latest dedup run's clusters of near-duplicates; a cluster's id is its smallest
        -- document id, so it stays the same across re-runs
        CREATE TABLE dedup_clusters (
            id INTEGER PRIMARY KEY,
            size INTEGER NOT NULL,
            similarity REAL NOT NULL,      -- lowest estimated Jaccard of a member to the kept one
            kept_doc_id INTEGER NOT NULL REFERENCES documents(id),
            kept_by TEXT NOT NULL,         -- rule | curator
            method TEXT NOT NULL,          -- exact | minhash
            params TEXT NOT NULL           -- JSON: bands, rows, ngram, threshold, seed
        );
        CREATE INDEX dedup_clusters_size ON dedup_clusters(size);

        -- every member of a cluster; the ones not kept carry the reason they are dropped
        CREATE TABLE dedup_marks (
            doc_id INTEGER PRIMARY KEY REFERENCES documents(id),
            cluster_id INTEGER NOT NULL REFERENCES dedup_clusters(id),
            kept_doc_id INTEGER NOT NULL REFERENCES documents(id),
            reason TEXT,                   -- NULL for the kept document
            similarity REAL NOT NULL,      -- estimated Jaccard with the kept document
            method TEXT NOT NULL,
            params TEXT NOT NULL
        );
        CREATE INDEX dedup_marks_cluster ON dedup_marks(cluster_id);

        -- a curator's choice of the document to keep in its cluster: survives re-runs
        CREATE TABLE dedup_keep (
            doc_id INTEGER PRIMARY KEY REFERENCES documents(id),
            created_at TEXT NOT NULL
        );

        CREATE TABLE dedup_runs (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            params TEXT NOT NULL,
            documents INTEGER NOT NULL,
            clusters INTEGER NOT NULL,
            removed INTEGER NOT NULL
        );

        -- n-gram overlaps of documents with benchmark items, one row per matching span
        CREATE TABLE decontam_hits (
            id INTEGER PRIMARY KEY,
            doc_id INTEGER NOT NULL REFERENCES documents(id),
            benchmark TEXT NOT NULL,
            item_id TEXT NOT NULL,
            n INTEGER NOT NULL,            -- words per n-gram
            ngram TEXT NOT NULL,           -- the matching text as the document has it
            doc_start INTEGER NOT NULL,    -- character offsets in the document's main text
            doc_end INTEGER NOT NULL,
            item_start INTEGER NOT NULL,   -- character offsets in item_text
            item_end INTEGER NOT NULL,
            item_text TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX decontam_hits_doc ON decontam_hits(doc_id);
        CREATE INDEX decontam_hits_benchmark ON decontam_hits(benchmark);

        CREATE TABLE decontam_runs (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            benchmark TEXT NOT NULL,
            source TEXT NOT NULL,          -- where the items came from (package file or path)
            n INTEGER NOT NULL,
            items INTEGER NOT NULL,
            documents INTEGER NOT NULL,
            contaminated INTEGER NOT NULL,
            hits INTEGER NOT NULL
        );
        """
    )


@migrations()
def m009_import_owner(db: Database) -> None:
    db.executescript(
        """
        -- the process running an import: a row left 'running' by a process that no longer
        -- exists (killed, crashed, the machine went down) reads as interrupted, not running
        ALTER TABLE imports ADD COLUMN pid INTEGER;
        ALTER TABLE imports ADD COLUMN host TEXT;
        """
    )


@migrations()
def m010_search_prefixes(db: Database) -> None:
    db.executescript(
        """
        -- prefix indexes of one to three letters: without them a search for t* merges the
        -- index entries of every term that starts with t (seconds over a million pages, on
        -- the thread that draws the corpus view); with them it reads one list. The index
        -- grows by about half, and an existing project's is rebuilt once, here.
        DROP TABLE document_fts;
        CREATE VIRTUAL TABLE document_fts USING fts5(
            title, main_text, content='document_text', content_rowid='doc_id',
            tokenize='unicode61 remove_diacritics 2', prefix='1 2 3'
        );
        INSERT INTO document_fts(document_fts) VALUES ('rebuild');
        """
    )
