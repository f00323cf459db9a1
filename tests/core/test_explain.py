"""Why a page got its score: the per-feature shares of a linear classifier's output."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from studio.classify.explain import ExplainError, explain
from studio.classify.features import HAND_NAMES, load_docs
from studio.classify.train import train_classifier
from studio.classify.versions import load_classifier
from studio.cli import cli
from studio.project import Project
from studio.store import Store
from tests.core.test_classify import make_labelled_project


@pytest.mark.parametrize("model", ["blend", "logistic"])
def test_the_shares_add_up_to_the_score_the_classifier_gives(
    project: Project, store: Store, model: str
) -> None:
    ids = make_labelled_project(store, labelled=60, unlabelled=10)
    train_classifier(project, store, features="tfidf+hand", model=model, folds=3)
    classifier = load_classifier(project, store)
    docs = load_docs(store, ids[:12])
    scores, keep = classifier.predict(docs, store)
    for doc, score, kept in zip(docs, scores, keep, strict=True):
        why = explain(classifier, doc, store, top=5)
        assert [b.name for b in why.blocks] == ["words (TF-IDF)", "hand features"]
        total = why.intercept + sum(b.total for b in why.blocks)
        assert why.output == pytest.approx(total, abs=1e-5)
        expected = score if model == "blend" else np.log(score / (1 - score))
        assert why.output == pytest.approx(float(expected), abs=1e-4)
        assert why.keep == bool(kept)
        words, hand = why.blocks
        assert 0 < len(words.parts) <= 5 and len(hand.parts) == 5
        # largest effect first, each part a word on the page or a hand feature
        sizes = [abs(v) for _, v in words.parts + hand.parts]
        assert sizes[:5] == sorted(sizes[:5], reverse=True)
        assert all(name in doc.text.lower() for name, _ in words.parts)
        assert all(name in HAND_NAMES for name, _ in hand.parts)
    assert why.measure == ("score" if model == "blend" else "log-odds")


def test_a_forest_says_it_cannot_be_split(project: Project, store: Store) -> None:
    ids = make_labelled_project(store, labelled=60, unlabelled=0)
    train_classifier(project, store, features="hand", model="forest", folds=3)
    classifier = load_classifier(project, store)
    with pytest.raises(ExplainError, match="random forest"):
        explain(classifier, load_docs(store, ids[:1])[0], store)


def test_cli_explains_a_page_and_refuses_what_it_cannot(project: Project, store: Store) -> None:
    ids = make_labelled_project(store, labelled=60, unlabelled=10)
    p = str(project.root)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["classifier", "explain", p, *args])
        return result.exit_code, result.output

    code, out = run(str(ids[0]))
    assert code == 1 and "no classifier trained yet" in out
    train_classifier(project, store, features="tfidf+hand", model="ridge", folds=3)
    code, out = run(str(ids[0]), "--top", "3")
    assert code == 0, out
    assert out.startswith(f"document {ids[0]}: score ") and "intercept" in out
    assert "words (TF-IDF): what moved it most" in out
    code, out = run(str(ids[0]), "--json")
    why = json.loads(out)
    assert why["doc_id"] == ids[0] and len(why["blocks"]) == 2
    assert run("999999")[1] == f"Error: no document 999999 in {p}\n"
    assert "no classifier version v9" in run(str(ids[0]), "--model", "v9")[1]
    assert run(str(ids[0]), "--top", "0")[0] == 2
