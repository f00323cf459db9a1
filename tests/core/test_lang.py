"""Language identification: common languages confidently, "und" when there is too little."""

from __future__ import annotations

import time

import pytest

from studio.lang import detect_language
from tests.fixtures.corpus import LESSONS, lesson_text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (lesson_text("photosynthesis"), "en"),
        (lesson_text("volcans"), "fr"),
        ("Der schnelle braune Fuchs springt über den faulen Hund und läuft in den Wald.", "de"),
        ("El agua de los océanos se evapora con el calor del sol y forma las nubes.", "es"),
        ("Фотосинтез — это процесс, при котором растения превращают свет в энергию.", "ru"),
        ("光合作用是绿色植物利用光能把二氧化碳和水转化为有机物的过程。", "zh"),
    ],
)
def test_common_languages(text: str, code: str) -> None:
    found, probability = detect_language(text)
    assert found == code
    assert 0.5 < probability <= 1.0


@pytest.mark.parametrize("text", ["", "Hi", "12345 67890 !!! 2024-05-17 3.14159", "   \n\t  "])
def test_too_little_text_is_undetermined(text: str) -> None:
    assert detect_language(text) == ("und", 0.0)


def test_long_text_is_classified_from_its_start_only() -> None:
    long_text = lesson_text("newton") * 2000  # ~1 MB
    detect_language("warm up the model once")
    start = time.perf_counter()
    assert detect_language(long_text)[0] == "en"
    assert time.perf_counter() - start < 0.1


def test_every_corpus_lesson_is_identified_confidently() -> None:
    for slug in LESSONS:
        code, probability = detect_language(lesson_text(slug))
        assert code == ("fr" if slug == "volcans" else "en") and probability > 0.9, slug
