"""The project database on a real SQLite file: schema, documents, search, corrections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from studio.project import Project, ProjectError, recent_projects, remember_project
from studio.store import DocumentQuery, NewDocument, Store
from studio.store.queries import MAX_SEARCH_TERMS, fts_expression
from studio.store.schema import migrations


def _doc(source_id: int, text: str, h: str, **kw) -> NewDocument:
    n = len(text.split())
    return NewDocument(
        source_id=source_id,
        content_hash=h,
        kind="text",
        raw=text,
        main_text=text,
        n_words=n,
        signal_words=kw.pop("signal", n),
        **kw,
    )


def _source(store: Store) -> int:
    imp = store.begin_import()
    return store.add_source(imp, "/data/a.jsonl", 10, 1.0, "jsonl")


def test_project_layout_and_wal(project: Project) -> None:
    assert project.db_path.exists()
    for sub in ("models", "runs", "exports"):
        assert project.dir(sub).is_dir()
    with project.store() as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        applied = store.conn.execute("SELECT name FROM _sqlite_migrations").fetchall()
        names = [r[0] for r in applied]
        assert names[:2] == ["m001_corpus", "m002_labels"]
        assert names == [m.name for m in migrations._migrations]  # every one, once, in order


def test_reopening_applies_no_migration_twice(project: Project) -> None:
    Project.open(project.root)
    with project.store() as store:
        count = store.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
        assert count == len(migrations._migrations)


def test_open_without_create_refuses_a_plain_folder(tmp_path) -> None:
    with pytest.raises(ProjectError, match="not a Textbook Studio project"):
        Project.open(tmp_path, create=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ProjectError, match="is a file"):
        Project.open(tmp_path / "file")


def test_recent_projects_newest_first(tmp_path) -> None:
    a, b = Project.open(tmp_path / "a"), Project.open(tmp_path / "b")
    remember_project(a.root)
    remember_project(b.root)
    remember_project(a.root)
    assert recent_projects()[:2] == [a.root, b.root]


def test_duplicate_hash_is_refused_and_counted(store: Store) -> None:
    src = _source(store)
    assert store.insert_document(_doc(src, "one two three", "h1")) is not None
    assert store.insert_document(_doc(src, "one two three", "h1")) is None
    assert store.totals()["documents"] == 1


def test_search_sort_and_filters(store: Store) -> None:
    src = _source(store)
    store.insert_document(_doc(src, "photosynthesis turns light into sugar", "a", lang="en"))
    store.insert_document(_doc(src, "la photosynthèse transforme la lumière", "b", lang="fr"))
    store.insert_document(_doc(src, "carbon dioxide and water " * 20, "c", lang="en"))
    assert store.count_documents(DocumentQuery(search="photosynthesis")) == 1
    # diacritics are folded, so the French page matches its unaccented spelling
    assert store.count_documents(DocumentQuery(search="photosynthese")) == 1
    assert store.count_documents(DocumentQuery(search='"carbon dioxide"')) == 1
    assert store.count_documents(DocumentQuery(search="photo*")) == 2
    assert store.count_documents(DocumentQuery(lang="fr")) == 1
    rows = store.list_documents(DocumentQuery(sort="words", descending=True), 0, 10)
    assert [r["n_words"] for r in rows] == sorted((r["n_words"] for r in rows), reverse=True)
    assert store.count_documents(DocumentQuery(min_words=50)) == 1


@pytest.mark.parametrize(
    "typed",
    ['"', "AND OR NOT", "*", "a:b", "NEAR(", "((", "-x", "é*", "a\x00b", '"a\x00b"', "\x7f\x01"],
)
def test_whatever_the_curator_types_is_a_valid_search(store: Store, typed: str) -> None:
    _ = fts_expression(typed)
    store.count_documents(DocumentQuery(search=typed))  # must not raise


def test_a_pasted_page_of_search_terms_is_cut_to_a_search(store: Store) -> None:
    src = _source(store)
    store.insert_document(_doc(src, "photosynthesis turns light into sugar", "a"))
    assert fts_expression("a* " * 3000) == '"a"*'  # one term, however often it is given
    many = " ".join(f"w{i}*" for i in range(1000))
    assert fts_expression(many).count("*") == MAX_SEARCH_TERMS
    assert fts_expression("light\x00sugar") == '"light" "sugar"'  # a NUL separates words
    assert store.count_documents(DocumentQuery(search="light\x00sugar")) == 1
    # punctuation alone is no term (the index holds none): '-' once matched no page while '"'
    # matched every page; both now search for nothing, and beside a word they do not count
    for typed in ("-", "(", '"', "*", ".", "+ %", "\u202e", '"--"', "_"):
        assert fts_expression(typed) == "", typed
        assert store.count_documents(DocumentQuery(search=typed)) == 1
    assert fts_expression("- light (") == '"light"'


def test_correction_updates_main_text_and_index(store: Store) -> None:
    src = _source(store)
    doc_id = store.insert_document(_doc(src, "menu home login", "a", signal=3))
    assert doc_id is not None
    store.correct_block(
        doc_id,
        locator="/html/body/nav",
        text="menu home login",
        label="boilerplate",
        model_label="signal",
        features={"links": 3},
        annotator="ana",
        main_text="",
        signal_words=0,
    )
    assert store.corrections(doc_id) == {"/html/body/nav": "boilerplate"}
    assert store.count_documents(DocumentQuery(search="login")) == 0
    assert store.document(doc_id).signal_share == 0.0
    kept = store.segmentation_corrections()
    assert kept[0]["text"] == "menu home login" and kept[0]["model_label"] == "signal"


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    src = _source(store)
    with pytest.raises(RuntimeError), store.transaction():
        store.insert_document(_doc(src, "kept? no", "x"))
        raise RuntimeError("boom")
    assert store.totals()["documents"] == 0


def test_readonly_store_cannot_write(project: Project) -> None:
    with project.store(readonly=True) as ro, pytest.raises(sqlite3.OperationalError):
        ro.set_meta("a", "b")


def test_a_project_made_before_labels_is_upgraded(tmp_path) -> None:
    """An m001-only database (the first release) gains the labels table and keeps its data."""
    from sqlite_utils import Database

    db_path = tmp_path / "old" / "studio.db"
    db_path.parent.mkdir()
    conn = sqlite3.connect(db_path)
    migrations.apply(Database(conn), stop_before="m002_labels")
    conn.execute("INSERT INTO meta(key, value) VALUES ('kept', 'yes')")
    conn.commit()
    conn.close()
    with Project.open(db_path.parent).store() as store:
        assert store.get_meta("kept") == "yes"
        assert store.label_summary()["documents"] == 0


def test_a_project_made_before_search_prefixes_gets_them_and_keeps_its_pages(
    tmp_path, caplog
) -> None:
    """m010 rebuilds the search index with prefix indexes: pages stored before it are found by
    one-letter prefixes, and pages added after it too. The rebuild is said before it starts
    (a minute or more on a large corpus), for a project with pages only."""
    project = make_old_project(tmp_path / "old")
    with caplog.at_level("WARNING", logger="studio"):
        Project.open(tmp_path / "new")
    assert not caplog.records  # a new project: nothing to rebuild, nothing said
    with Project.open(project.root).store() as store:
        (sql,) = store.conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'document_fts'"
        ).fetchone()
        assert "prefix='1 2 3'" in sql
        src = _source(store)
        store.insert_document(_doc(src, "tea in the afternoon", "c"))
        assert store.count_documents(DocumentQuery(search="t*")) == 3  # turns, tables, tea
        assert store.count_documents(DocumentQuery(search="ph*")) == 1
        assert store.count_documents(DocumentQuery(search="e*")) == 1  # écoles, folded
        assert store.count_documents(DocumentQuery(search="sugar")) == 1
    (said,) = [r.getMessage() for r in caplog.records]
    assert f"Updating the project {project.root}" in said and "rebuilding its search index" in said


def test_a_read_only_project_that_needs_the_update_says_why_it_must_write(
    tmp_path, monkeypatch
) -> None:
    import studio.store

    project = make_old_project(tmp_path / "old")
    use_wal = studio.store._use_wal

    def refusing_writes(conn: sqlite3.Connection) -> None:  # SQLite itself refuses, as on a
        use_wal(conn)  # read-only file
        conn.execute("PRAGMA query_only = 1")

    monkeypatch.setattr(studio.store, "_use_wal", refusing_writes)
    with pytest.raises(ProjectError) as refused:
        Project.open(project.root)
    said = str(refused.value)
    assert "is read-only" in said and "earlier version of the studio is updated" in said
    monkeypatch.undo()
    with sqlite3.connect(project.db_path) as conn:  # nothing was changed
        (sql,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'document_fts'"
        ).fetchone()
        assert "prefix" not in sql


def make_old_project(root: Path) -> Project:
    """A project with two pages as a studio before m010 left it: the index without prefixes."""
    project = Project.open(root)
    with project.store() as store:
        src = _source(store)
        store.insert_document(_doc(src, "photosynthesis turns light into sugar", "a"))
        store.insert_document(_doc(src, "écoles et tables", "b"))
    conn = sqlite3.connect(project.db_path)
    conn.executescript(
        """
        DROP TABLE document_fts;
        CREATE VIRTUAL TABLE document_fts USING fts5(
            title, main_text, content='document_text', content_rowid='doc_id',
            tokenize='unicode61 remove_diacritics 2'
        );
        INSERT INTO document_fts(document_fts) VALUES ('rebuild');
        DELETE FROM _sqlite_migrations WHERE name = 'm010_search_prefixes';
        """
    )
    conn.close()
    return project


def test_two_processes_opening_a_new_project_at_once(tmp_path) -> None:
    """Both must find the schema complete; neither may fail on a migration the other applied."""
    import subprocess
    import sys

    root = tmp_path / "p"
    code = (
        "import sys; from studio.project import Project; "
        "s = Project.open(sys.argv[1]).store(); print(s.label_summary()['documents']); s.close()"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.strip() == "0"
    with Project.open(root).store() as store:
        count = store.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
        assert count == len(migrations._migrations)


def test_a_project_another_studio_has_just_begun_is_opened(tmp_path) -> None:
    """The moment between another studio making the migrations' table and committing its first
    migration: the database holds only that bookkeeping, and is a new project, not a foreign
    file (refusing it once failed the test above one run in many)."""
    from sqlite_utils import Database

    root = tmp_path / "p"
    root.mkdir()
    db = Database(root / "studio.db")
    migrations.ensure_migrations_table(db)
    db.close()
    with Project.open(root).store() as store:
        count = store.conn.execute("SELECT count(*) FROM _sqlite_migrations").fetchone()[0]
        assert count == len(migrations._migrations)


def test_scores_of_documents_removed_meanwhile_are_passed_over(store: Store) -> None:
    src = _source(store)
    kept = store.insert_document(_doc(src, "photosynthesis turns light into sugar", "a"))
    assert kept is not None
    store.conn.execute(
        "INSERT INTO classifier_versions(id, created_at, feature_set, model_kind, threshold, "
        "metrics, label_hash, n_labels, path) VALUES ('v1', 'now', 'hand', 'ridge', 3, '{}', "
        "'h', 0, 'x')"
    )
    # scoring read the page, then another program removed the second one before the write
    assert store.add_scores("v1", [(kept, 3.5, True), (kept + 1000, 1.0, False)]) == 1
    rows = store.conn.execute("SELECT doc_id, score FROM classifier_scores").fetchall()
    assert [tuple(r) for r in rows] == [(kept, 3.5)]
