"""The shipped demo corpus (`attnc/data/stories.txt`) is present, big enough and clean."""

from __future__ import annotations

from pathlib import Path

import pytest

STORIES = Path(__file__).resolve().parent.parent / "attnc" / "data" / "stories.txt"


@pytest.fixture(scope="module")
def paragraphs() -> list[str]:
    assert STORIES.is_file(), f"demo corpus missing: {STORIES}"
    text = STORIES.read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def test_corpus_has_at_least_300_stories(paragraphs):
    assert len(paragraphs) >= 300


def test_corpus_has_at_least_25000_words(paragraphs):
    assert sum(len(p.split()) for p in paragraphs) >= 25_000


def test_corpus_has_no_duplicate_stories(paragraphs):
    seen: dict[str, int] = {}
    for index, paragraph in enumerate(paragraphs):
        assert paragraph not in seen, f"story {index} duplicates story {seen[paragraph]}"
        seen[paragraph] = index


def test_stories_are_short_single_paragraphs(paragraphs):
    lengths = [len(p.split()) for p in paragraphs]
    assert min(lengths) >= 40 and max(lengths) <= 200
    assert not any("\n" in p for p in paragraphs)
