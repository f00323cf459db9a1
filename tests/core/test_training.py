"""Recipes, their resolution against a project, the tokenizer and the token streams (real SQLite,
a real classifier, the real ``tokenizers`` library)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from studio import paths
from studio.classify.score import score_documents
from studio.classify.train import train_classifier
from studio.progress import Task
from studio.project import Project
from studio.store import NewDocument, Store
from studio.training.data import Encoder, TokenStream, build_data, dtype_for, reading_grade
from studio.training.mix import held_out, is_code, resolve
from studio.training.recipe import (
    MAX_NAME,
    Recipe,
    RecipeError,
    Source,
    builtin_recipe,
    check_recipe_name,
    load_recipe,
    read_recipe,
    recipe_from_dict,
    recipe_paths,
    save_recipe,
)
from studio.training.tokenizer import TokenizerError, eos_id, load_tokenizer, train_tokenizer

LESSON = [
    "In this lesson we explain how {a} works, step by step.",
    "The {a} changes the {b} because energy moves from one place to another.",
    "For example, a {a} that is heated expands, and the {b} follows.",
    "Therefore we can write a simple equation that relates the {a} to the {b}.",
    "Students should check the result with a small experiment and record the evidence.",
    "A definition helps: the {a} is the part of the system that stores the {b}.",
    "Exercise: explain why the {b} grows when the {a} is doubled, then check the answer.",
]
SHOP = [
    "Buy the {a} now and save {n}% on shipping!",
    "Click here to subscribe to our newsletter about {b} deals.",
    "Login to your account to see the price of the {a}.",
    "Sponsored: the cheapest {b} in town, free trial for {n} days.",
    "Cookie settings | Privacy | Share | Like | Comment | {a} offers",
]
THINGS = ["cell", "river", "magnet", "planet", "circuit", "molecule", "lever", "cloud", "seed"]
CODE = "def area(r):\n    return 3.14159 * r * r\n\nfor r in range(10):\n    print(area(r))\n"


def _page(templates: list[str], rng: random.Random, sentences: int) -> str:
    out = []
    for _ in range(sentences):
        t = rng.choice(templates)
        out.append(t.format(a=rng.choice(THINGS), b=rng.choice(THINGS), n=rng.randint(2, 90)))
    return " ".join(out)


def make_training_project(
    project: Project, store: Store, *, lessons: int = 40, shop: int = 40, code: int = 3
) -> dict[str, list[int]]:
    """Lesson pages (labelled 4-5), shop pages (labelled 0-1) and a few code pages, a real
    classifier (hand features, logistic) trained on the labels and scoring every page."""
    rng = random.Random(11)
    src = store.add_source(store.begin_import(), "/corpus/web.jsonl", 1, 1.0, "jsonl")
    code_src = store.add_source(
        store.begin_import(), "/corpus/code/snippets.jsonl", 1, 1.0, "jsonl"
    )
    ids: dict[str, list[int]] = {"lesson": [], "shop": [], "code": []}
    for kind, n, templates in (("lesson", lessons, LESSON), ("shop", shop, SHOP)):
        for i in range(n):
            text = _page(templates, rng, rng.randint(15, 45))
            words = len(text.split())
            doc = NewDocument(src, f"{kind}{i}", "text", text, text, words, words)
            doc_id = store.insert_document(doc)
            assert doc_id is not None
            ids[kind].append(doc_id)
            store.set_label(
                doc_id, "ana", rng.choice([4, 5]) if kind == "lesson" else rng.choice([0, 1])
            )
    for i in range(code):
        text = f"# snippet {i}\n" + CODE * (i + 1)
        doc_id = store.insert_document(
            NewDocument(code_src, f"code{i}", "text", text, text, len(text.split()), 1)
        )
        ids["code"].append(doc_id)
    train_classifier(project, store, features="hand", model="logistic", threshold=3, folds=3)
    score_documents(project, store)
    return ids


@dataclass
class Trained:
    project: Project
    store: Store
    ids: dict[str, list[int]]


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Built once (a classifier is trained on it), copied for every test that changes it."""
    root = tmp_path_factory.mktemp("trained") / "project"
    project = Project.open(root)
    with project.store() as store:
        ids = make_training_project(project, store)
    return root, ids


@pytest.fixture
def trained(trained_template: tuple[Path, dict], tmp_path: Path) -> Iterator[Trained]:
    root, ids = trained_template
    shutil.copytree(root, tmp_path / "trained")
    project = Project.open(tmp_path / "trained", create=False)
    with project.store() as store:
        yield Trained(project, store, ids)


# -- recipes as files ----------------------------------------------------------------------------


def test_presets_load_and_a_recipe_round_trips_through_toml(project: Project) -> None:
    names = recipe_paths(project.root)
    for preset in ("all", "curated", "raw", "phi3-mini", "phi1", "curriculum"):
        assert preset in names
        load_recipe(project.root, preset)
    phi3 = load_recipe(project.root, "phi3-mini")
    assert [s.share for s in phi3.sources] == [0.35, 0.15, 0.30, 0.15, 0.05]
    recipe = Recipe(
        "mine",
        [
            Source("web", "filtered", share=0.6, model="latest", threshold=None),
            Source('quotes "and" \\ slashes ✓', "import", tokens=5000, path="*/code/*"),
        ],
        [Source("held web", "web")],
        heldout=0.2,
        curriculum="grade",
        description='a "quoted" line\nand a second',
    )
    path = save_recipe(project.root, recipe)
    assert path == project.root / "recipes" / "mine.toml"
    again = load_recipe(project.root, "mine")
    assert again == recipe
    assert recipe_paths(project.root)["mine"][0] == "project"
    json_path = project.root / "recipes" / "asjson.json"
    json_path.write_text(json.dumps(recipe.to_dict()), "utf-8")
    assert load_recipe(project.root, "asjson").sources == recipe.sources


def test_a_project_recipe_wins_over_a_file_of_its_name_in_the_working_folder(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe saved as ``spring.toml`` (recipes/spring.toml.toml) was read from
    ./spring.toml instead, whatever that file was (from the source folder: pyproject.toml)."""
    (project.root / "recipes").mkdir(exist_ok=True)
    (project.root / "recipes" / "spring.toml.toml").write_text(
        "[[sources]]\nname = 'w'\nkind = 'web'\nshare = 1\n", "utf-8"
    )
    monkeypatch.chdir(tmp_path)
    (tmp_path / "spring.toml").write_text("[tool]\nx = 1\n", "utf-8")
    assert [s.name for s in load_recipe(project.root, "spring.toml").sources] == ["w"]
    with pytest.raises(RecipeError, match="unknown setting"):  # a path still reads as a path
        load_recipe(project.root, str(tmp_path / "spring.toml"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("heldout = [", "not valid toml"),
        ("[[sources]]\nname='a'\nkind='synthetic'\nstatus='acepted'\nshare=1\n", "status is one"),
        ("[[sources]]\nname='a'\nkind='synthetic'\ncell=''\nshare=1\n", "empty cell"),
        ("[[sources]]\nname='a'\npath=\"a\\u0007b\"\nshare=1\n", "control character"),
        ("[[sources]]\nname='a'\nkind='web'\n", "needs a share or tokens"),
        ("[[sources]]\nname='a'\nkind='moon'\nshare=1\n", "kind is one of"),
        ("[[sources]]\nname='a'\nshare=-1\n", "negative"),
        ("[[sources]]\nname='a'\nshare=1\ntokens=5\n", "needs a share or tokens"),
        ("[[sources]]\nname='a'\nshare=0\n", "zero share"),
        ("[[sources]]\nname='a'\nshare=1\ncolour='red'\n", "unknown key"),
        ("[[sources]]\nname='a'\nshare='lots'\n", "must be a number"),
        ("[[sources]]\nname='a'\nshare=nan\n", "must be a number"),
        ("[[sources]]\nname='a'\nshare=1\ncode='yes'\n", "true or false"),
        ("heldout = 0.95\n[[sources]]\nname='a'\nshare=1\n", "heldout"),
        ("oops = 1\n[[sources]]\nname='a'\nshare=1\n", "unknown setting"),
        ("description = 'no sources'\n", "no [[sources]]"),
        ("[[sources]]\nname='a'\nshare=1\n[[sources]]\nname='a'\nshare=1\n", "share a name"),
        ("sources = 5\n", "list of tables"),
    ],
)
def test_broken_recipes_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(RecipeError, match=re.escape(message)):
        read_recipe(path)


def test_unreadable_and_unknown_recipes(project: Project, tmp_path: Path) -> None:
    bad = tmp_path / "binary.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(RecipeError, match="binary.toml is not UTF-8 text"):
        read_recipe(bad)
    huge = tmp_path / "huge.toml"
    huge.write_bytes(b"#" * 2_000_000)
    with pytest.raises(RecipeError, match="cannot read recipe .*more than 1,000,000 bytes"):
        load_recipe(project.root, str(huge))
    pipe = tmp_path / "pipe.toml"
    os.mkfifo(pipe)  # opening it would wait for a writer
    with pytest.raises(RecipeError, match="not a regular file"):
        load_recipe(project.root, str(pipe))
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0::/root:/bin/sh\n")
    with pytest.raises(RecipeError, match="passwd is not a recipe file: .* .toml or .json"):
        load_recipe(project.root, str(passwd))
    with pytest.raises(RecipeError, match="no recipe file .*gone.toml"):
        load_recipe(project.root, str(tmp_path / "gone.toml"))
    with pytest.raises(RecipeError, match="no recipe 'nope'.*known: all"):
        load_recipe(project.root, "nope")
    with pytest.raises(RecipeError, match="cannot save"):
        save_recipe(project.root, builtin_recipe())
    with pytest.raises(RecipeError):
        recipe_from_dict([1, 2], "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a\x00b", "contains a control character"),
        ("new\nline", "contains a control character"),
        ("n" * 300, "too long"),
        ("é" * 101, "too long"),
        ("../x", "starts with a dot"),
        ("..", "starts with a dot"),
        (".", "starts with a dot"),
        ("a/b", "contains '/'"),
        ("a\\b", "contains '\\'"),
        ("what?", "contains '?'"),
        (" lead", "starts or ends with a space"),
        ("", "needs a name"),
        ("all", "built-in recipe"),
        ("con", "Windows keeps that name"),
        ("LPT1.txt", "Windows keeps that name"),
    ],
)
def test_a_recipe_name_must_be_a_plain_file_name(project: Project, name: str, message: str) -> None:
    recipe = Recipe(name, [Source("web", "web", share=1.0)])
    with pytest.raises(RecipeError, match=re.escape(message)):
        save_recipe(project.root, recipe)
    folder = project.root / "recipes"
    assert not folder.exists() or not list(folder.iterdir())  # nothing written, not even a tmp


def test_plain_recipe_names_of_any_script_are_kept(project: Project) -> None:
    for name in ("my mix (v2)", "Mélange_3.1", "混合-レシピ", "x" * MAX_NAME):
        assert check_recipe_name(name) == name
        path = save_recipe(project.root, Recipe(name, [Source("web", "web", share=1.0)]))
        assert path.name == f"{name}.toml" and load_recipe(project.root, name).name == name


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("tokens = 1e400", "must be a number, not inf"),
        ("tokens = inf", "must be a number, not inf"),
        ("tokens = 99999999999999999999999999", "a budget is at most 1,000,000,000,000,000"),
        ("share = 1e300", "shares are relative weights"),
        ("share = -0.5", "negative"),
    ],
)
def test_absurd_amounts_are_refused(tmp_path: Path, amount: str, message: str) -> None:
    path = tmp_path / "absurd.toml"
    path.write_text(f"[[sources]]\nname = 'web'\nkind = 'web'\n{amount}\n", "utf-8")
    with pytest.raises(RecipeError, match=re.escape(message)):
        read_recipe(path)


# -- resolving a recipe against the project ------------------------------------------------------


def test_the_held_out_split_is_fixed_per_document_and_shared_by_recipes(
    trained: Trained,
) -> None:
    project, store = trained.project, trained.store
    raw = resolve(store, load_recipe(project.root, "raw"))
    curated = resolve(store, load_recipe(project.root, "curated"))
    everything = resolve(store, builtin_recipe())
    raw_train, raw_held = set(raw.sources[0].train), set(raw.sources[0].heldout)
    cur_train = set(curated.sources[0].train)
    assert raw_held and not raw_train & raw_held
    assert cur_train <= raw_train  # filtered web is a subset of the web
    # the evaluation sets are the same pages whichever recipe asks
    for a, b in zip(raw.evals, curated.evals, strict=True):
        assert a.heldout == b.heldout
    held_web = next(e for e in raw.evals if e.source.name == "web").heldout
    assert set(held_web) == raw_held == set(everything.sources[0].heldout)
    # no recipe trains on a page any evaluation set scores
    for mix in (raw, curated, everything):
        scored = {d for e in mix.evals for d in e.heldout}
        assert not scored & {d for s in mix.sources for d in s.train}
    # the split is a property of the content: another seed, another split; same seed, same
    assert held_out("abc", 0, 0.1) == held_out("abc", 0, 0.1)
    flips = sum(held_out(f"h{i}", 0, 0.5) != held_out(f"h{i}", 1, 0.5) for i in range(200))
    assert 60 < flips < 140


def test_filtered_web_follows_the_classifier_and_notes_what_is_missing(
    trained: Trained,
) -> None:
    project, store = trained.project, trained.store
    curated = resolve(store, load_recipe(project.root, "curated"))
    web, synthetic = curated.sources
    kept = {r[0] for r in store.conn.execute("SELECT doc_id FROM classifier_scores WHERE keep = 1")}
    assert set(web.train + web.heldout) == kept
    assert len(set(web.train) & set(trained.ids["lesson"])) > 0.8 * len(web.train)
    assert synthetic.train == [] and synthetic.note
    assert any("synthetic" in w for w in curated.warnings)
    assert curated.shares(10_000) == [1.0, 0.0]  # the empty source's share goes to the others
    with pytest.raises(RecipeError, match="P\\(keep\\)"):
        resolve(
            store,
            recipe_from_dict(
                {"sources": [{"name": "w", "kind": "filtered", "threshold": 3.5, "share": 1}]}, "t"
            ),
        )
    with pytest.raises(RecipeError, match="no classifier version 9999"):
        resolve(
            store,
            recipe_from_dict(
                {"sources": [{"name": "w", "kind": "filtered", "model": "9999", "share": 1}]}, "t"
            ),
        )


def test_imported_sets_code_pages_and_budgets(
    trained: Trained,
) -> None:
    store = trained.store
    recipe = recipe_from_dict(
        {
            "heldout": 0.01,
            "sources": [
                {"name": "code files", "kind": "import", "path": "*/code/*", "tokens": 1000},
                {"name": "code-like", "kind": "web", "code": True, "share": 1},
                {"name": "prose", "kind": "web", "code": False, "share": 3},
            ],
        },
        "mixed",
    )
    mix = resolve(store, recipe)
    files, code_like, prose = mix.sources
    assert set(files.train + files.heldout) == set(trained.ids["code"])
    assert set(code_like.train + code_like.heldout) == set(trained.ids["code"])
    assert not set(prose.train) & set(trained.ids["code"])
    shares = mix.shares(10_000)
    assert shares[0] == pytest.approx(0.1)  # 1,000 of 10,000 tokens
    assert shares[1:] == pytest.approx([0.9 * 1 / 4, 0.9 * 3 / 4])
    assert mix.shares(500)[0] == pytest.approx(1.0)  # a budget larger than the run: capped
    assert is_code(CODE) and not is_code(LESSON[0])


def test_synthetic_pages_by_status_and_cell(project: Project, store: Store) -> None:
    from studio.generate.plan import Cell
    from studio.generate.record import accept, add_pages, create_batch, reject, set_page

    batch = create_batch(store, {"test": True})
    cells = [
        Cell("Science", "Energy", "Heat", "middle school", style, "easy")
        for style in ("textbook section", "exercise with solution", "worked example")
    ]
    page_ids = add_pages(store, batch, 1, [(c, "teacher-x", None) for c in cells * 4])
    accepted = []
    for i, page_id in enumerate(page_ids):
        set_page(
            store, page_id, "running", text=f"Page {i}. " + _page(LESSON, random.Random(i), 20)
        )
        if i % 4 == 3:
            reject(store, page_id, ["too short"])
        else:
            accepted.append(accept(store, page_id, ["ok"]))
    phi3 = load_recipe(project.root, "phi3-mini")
    with pytest.raises(RecipeError, match="filtered web.*no classifier trained yet"):
        resolve(store, phi3)
    phi3.sources = phi3.sources[:2]  # its synthetic textbooks and exercises
    mix = resolve(store, phi3)
    textbooks, exercises = mix.sources[0], mix.sources[1]
    got_exercises = set(exercises.train + exercises.heldout)
    got_textbooks = set(textbooks.train + textbooks.heldout)
    assert got_exercises and got_textbooks and not got_exercises & got_textbooks
    assert got_exercises | got_textbooks == set(accepted)
    web = resolve(store, load_recipe(project.root, "raw")).sources[0]
    assert not set(web.train + web.heldout) & set(accepted)  # synthetic pages are not web


# -- tokenizer and token streams -----------------------------------------------------------------


def test_byte_level_tokenizer_round_trips_anything(tmp_path: Path) -> None:
    texts = [_page(LESSON, random.Random(i), 30) for i in range(50)]
    tok = train_tokenizer(texts, 600)
    assert 300 < tok.get_vocab_size() <= 600
    for text in ("naïve café ✓ 数学 🙂", "\x00\x07 tabs\tand\r\nlines", "", "a" * 5000):
        assert tok.decode(tok.encode(text, add_special_tokens=False).ids) == text
    tok.save(str(tmp_path / "tokenizer.json"))
    again = load_tokenizer(tmp_path)  # a folder holding tokenizer.json
    assert eos_id(again) == eos_id(tok) == 0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "tokenizer.json").write_text("{not json", "utf-8")
    with pytest.raises(TokenizerError, match="cannot read"):
        load_tokenizer(tmp_path / "bad")
    with pytest.raises(TokenizerError, match="no tokenizer"):
        load_tokenizer(tmp_path / "missing")


def _encoder(store: Store, vocab: int = 500) -> Encoder:
    texts = [t for t, _ in store.texts(store.document_ids()).values()]
    tok = train_tokenizer(texts, vocab)
    return Encoder(tok, eos_id(tok), dtype_for(tok.get_vocab_size()))


def test_streams_give_each_source_its_share_and_repeat_small_ones(
    trained: Trained, tmp_path: Path
) -> None:
    store = trained.store
    recipe = recipe_from_dict(
        {
            "sources": [
                {"name": "lessons", "kind": "filtered", "share": 0.25},
                {"name": "code", "kind": "import", "path": "*/code/*", "share": 0.25},
                {"name": "web", "kind": "web", "code": False, "share": 0.5},
            ],
            "eval": [{"name": "web", "kind": "web"}, {"name": "empty", "kind": "synthetic"}],
        },
        "shares",
    )
    mix = resolve(store, recipe)
    plan = build_data(
        store,
        mix,
        _encoder(store),
        20_000,
        seed=3,
        eval_tokens=2_000,
        eval_doc_tokens=300,
        folder=tmp_path / "data",
        task=Task(),
    )
    stream = TokenStream(tmp_path / "data" / "train.bin", plan["dtype"])
    assert len(stream) == plan["train_tokens"] >= 20_001
    taken = [s["tokens_taken"] for s in plan["sources"]]
    assert taken == [pytest.approx(t, abs=2) for t in (5_001, 5_001, 10_001)]
    assert plan["sources"][1]["repeats"] > 3  # three small code pages, seen several times
    assert set(plan["evals"]) == {"web"}  # an evaluation set without held-out pages is left out
    web = plan["evals"]["web"]
    # every held-out page until the budget, each cut to 300 tokens
    assert web["tokens"] >= 2_000 or web["documents"] == len(mix.evals[0].heldout)
    assert web["tokens"] <= 300 * web["documents"]
    assert 1.0 < web["bytes_per_token"] < 8
    x, y = stream.batch(3, 4, 32)
    assert x.shape == (4, 32) and (x[:, 1:] == y[:, :-1]).all()
    with pytest.raises(IndexError):
        stream.batch(10**6, 4, 32)
    again = build_data(
        store,
        mix,
        _encoder(store),
        20_000,
        seed=3,
        eval_tokens=2_000,
        eval_doc_tokens=300,
        folder=tmp_path / "again",
        task=Task(),
    )
    assert again == plan
    assert (tmp_path / "data" / "train.bin").read_bytes() == (
        tmp_path / "again" / "train.bin"
    ).read_bytes()


def test_a_curriculum_puts_easier_pages_first(trained: Trained, tmp_path: Path) -> None:
    store = trained.store
    encoder = _encoder(store)
    recipe = recipe_from_dict(
        {"curriculum": "words", "sources": [{"name": "web", "kind": "web", "share": 1}]}, "c"
    )
    mix = resolve(store, recipe)
    plan = build_data(
        store,
        mix,
        encoder,
        20_000,
        seed=0,
        eval_tokens=500,
        eval_doc_tokens=200,
        folder=tmp_path,
        task=Task(),
    )
    tokens = np.fromfile(tmp_path / "train.bin", dtype=plan["dtype"])
    docs = np.split(tokens, np.flatnonzero(tokens == encoder.eos) + 1)
    texts = [encoder.tokenizer.decode([int(t) for t in d]) for d in docs if len(d) > 1]
    words = [len(t.split()) for t in texts[:-1]]  # the last page may be cut short
    assert len(words) > 20
    assert words == sorted(words)  # shorter pages first, exactly
    assert reading_grade("The cat sat. The dog ran.") < reading_grade(
        "Photosynthetic organisms convert electromagnetic radiation into chemical energy "
        "through complicated biochemical pathways involving chlorophyll."
    )


def test_hostile_pages_do_not_break_the_streams(
    project: Project, store: Store, tmp_path: Path
) -> None:
    src = store.add_source(store.begin_import(), "/hostile", 1, 1.0, "txt")
    texts = ["", "\ufffe\u202e right-to-left", "x" * 300_000, "\x00" * 50, "🙂" * 1000, "ok " * 50]
    for i, text in enumerate(texts):
        store.insert_document(NewDocument(src, f"hostile{i}", "text", text, text, 1, 1))
    mix = resolve(
        store, recipe_from_dict({"heldout": 0.3, "sources": [{"name": "a", "share": 1}]}, "h")
    )
    encoder = _encoder(store, 300)
    plan = build_data(
        store,
        mix,
        encoder,
        5_000,
        seed=0,
        eval_tokens=500,
        eval_doc_tokens=100,
        folder=tmp_path,
        task=Task(),
    )
    assert plan["train_tokens"] >= 5_001
    cancelled = Task()
    cancelled.cancel()
    from studio.progress import Cancelled

    with pytest.raises(Cancelled):
        build_data(
            store,
            mix,
            encoder,
            5_000,
            seed=0,
            eval_tokens=500,
            eval_doc_tokens=100,
            folder=tmp_path / "c",
            task=cancelled,
        )


def test_presets_ship_as_resources() -> None:
    folder = paths.resource("recipes")
    for path in folder.glob("*.toml"):
        recipe = read_recipe(path)
        assert recipe.description and recipe.evals
        assert {e.name for e in recipe.evals} == {"web", "textbook", "synthetic"}
        assert recipe.heldout == 0.1 and recipe.split_seed == 0  # one split for every preset
