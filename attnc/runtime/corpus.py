"""Corpora and the fixed-length token windows cut from them.

A corpus is a list of texts read from a plain-text file (paragraphs separated
by blank lines), a JSONL file (one object per line, text in a field), or a
directory of such files. It is tokenized once: texts are tokenized separately,
without special tokens, and joined into one token stream with the tokens of
`TEXT_SEPARATOR` ("\\n\\n", a blank line, exactly as a plain-text corpus file
separates paragraphs) between consecutive texts. No BOS/EOS tokens are added.

Windows are exactly `window` tokens long (never padded):

* ``fixed``: consecutive non-overlapping windows of the stream; the remainder
  at the end is dropped.
* ``sentence``: every window starts at the first token of a sentence (a token
  whose text follows a sentence end ``.!?`` plus closing quotes/brackets, a
  newline, or the start of a text), takes the next `window` tokens of the
  stream (so a short sentence runs on into the next one, a long one is cut),
  and the next window starts at the first sentence start after it ends.
  Use a small `window` (e.g. 16-32) for the paper's sentence-length windows.

The fit/held-out split is by window, seeded: a permutation of window indices
from ``numpy.random.default_rng(seed)``; the first
``round(N * heldout_fraction)`` are held out (at least one of each side when
0 < fraction < 1).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: Tokens placed between consecutive texts in the stream (a blank line).
TEXT_SEPARATOR = "\n\n"
WINDOW_MODES = ("fixed", "sentence")
_TEXT_SUFFIXES = {".txt", ".text", ".md"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}
#: Texts tokenized per call; also the granularity of early stopping with max_windows.
_TOKENIZE_CHUNK = 256
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)|\n")


class CorpusError(ValueError):
    """A corpus that cannot yield windows (missing, empty, too small, bad format)."""


class WindowTooLongError(CorpusError):
    """The window is longer than the model's context."""


@dataclass(frozen=True)
class Corpus:
    """Texts in reading order.

    Attributes:
        texts: the non-empty texts.
        source: where they came from (path).
        sha256: hash of the texts themselves (each UTF-8 encoded, NUL
            separated), so the same texts give the same hash whatever the
            file format.
    """

    texts: tuple[str, ...]
    source: str
    sha256: str

    @classmethod
    def from_texts(cls, texts: Sequence[str], source: str = "<memory>") -> "Corpus":
        texts = tuple(t for t in texts if t.strip())
        digest = hashlib.sha256()
        for text in texts:
            digest.update(text.encode("utf-8"))
            digest.update(b"\0")
        return cls(texts=texts, source=source, sha256=digest.hexdigest())

    def describe(self) -> dict:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "n_texts": len(self.texts),
            "n_chars": sum(len(t) for t in self.texts),
        }


def read_corpus(path: str | Path, *, text_field: str = "text") -> Corpus:
    """Read a corpus file or directory.

    Args:
        path: a plain-text file (paragraphs separated by blank lines), a
            ``.jsonl``/``.ndjson`` file, or a directory whose files (sorted by
            name, hidden files skipped, recursively) are read the same way.
        text_field: the JSONL field holding the text.

    Returns:
        A `Corpus`.

    Raises:
        CorpusError: missing path, unreadable line, missing field, or no text.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise CorpusError(f"{path}: directory has no files")
    elif path.is_file():
        files = [path]
    else:
        raise CorpusError(f"{path}: no such corpus file or directory")
    texts: list[str] = []
    for file in files:
        texts.extend(_read_file(file, text_field))
    corpus = Corpus.from_texts(texts, source=str(path))
    if not corpus.texts:
        raise CorpusError(f"{path}: corpus has no text")
    return corpus


def _read_file(path: Path, text_field: str) -> list[str]:
    try:
        content = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CorpusError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from error
    if path.suffix.lower() in _JSONL_SUFFIXES:
        return _parse_jsonl(path, content, text_field)
    paragraphs = re.split(r"\n[ \t]*\n", content.replace("\r\n", "\n"))
    return [p.strip() for p in paragraphs if p.strip()]


def _parse_jsonl(path: Path, content: str, text_field: str) -> list[str]:
    texts = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{path}:{number}: invalid JSON ({error.msg})") from error
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise CorpusError(
                f"{path}:{number}: no string field {text_field!r} (has {keys}); choose the field with text_field/--text-field"
            )
        texts.append(record[text_field])
    return texts


@dataclass(frozen=True, eq=False)
class Windows:
    """Token windows of one corpus and tokenizer, with their fit/held-out split.

    Attributes:
        ids: int64 [N, window] token ids.
        split: bool [N], True = held out.
        window, mode, seed, heldout_fraction: how they were made.
        corpus_sha256, corpus_source, tokenizer_name: what they were made from.
        n_stream_tokens: tokens in the stream the windows were cut from.
    """

    ids: np.ndarray
    split: np.ndarray
    window: int
    mode: str
    seed: int
    heldout_fraction: float
    corpus_sha256: str
    corpus_source: str
    tokenizer_name: str
    n_stream_tokens: int

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def fit_indices(self) -> np.ndarray:
        return np.flatnonzero(~self.split)

    @property
    def heldout_indices(self) -> np.ndarray:
        return np.flatnonzero(self.split)

    @property
    def fit_ids(self) -> np.ndarray:
        return self.ids[~self.split]

    @property
    def heldout_ids(self) -> np.ndarray:
        return self.ids[self.split]

    def indices(self, which: str) -> np.ndarray:
        """Window indices of ``fit``, ``heldout`` or ``all``."""
        if which == "fit":
            return self.fit_indices
        if which == "heldout":
            return self.heldout_indices
        if which == "all":
            return np.arange(len(self))
        raise ValueError(f"unknown split {which!r}; choose fit, heldout or all")

    @property
    def ids_sha256(self) -> str:
        """Hash of the window contents (shape + ids), identifying them in artifacts."""
        return ids_sha256(self.ids)

    def describe(self) -> dict:
        """JSON-ready record of the windows and their split (recorded in results)."""
        return {
            "window": self.window,
            "mode": self.mode,
            "seed": self.seed,
            "heldout_fraction": self.heldout_fraction,
            "separator": TEXT_SEPARATOR,
            "n_windows": len(self),
            "n_fit": int((~self.split).sum()),
            "n_heldout": int(self.split.sum()),
            "heldout_indices": [int(i) for i in self.heldout_indices],
            "n_stream_tokens": self.n_stream_tokens,
            "corpus_sha256": self.corpus_sha256,
            "corpus_source": self.corpus_source,
            "tokenizer": self.tokenizer_name,
            "ids_sha256": self.ids_sha256,
        }


def ids_sha256(ids: np.ndarray) -> str:
    """sha256 of windows of token ids (shape + little-endian int64 ids)."""
    digest = hashlib.sha256(repr(ids.shape).encode())
    digest.update(np.ascontiguousarray(ids, dtype="<i8").tobytes())
    return digest.hexdigest()


def make_windows(
    corpus: Corpus,
    tokenizer,
    *,
    window: int = 128,
    mode: str = "fixed",
    heldout_fraction: float = 0.5,
    seed: int = 0,
    max_windows: int | None = None,
    skip_windows: int = 0,
) -> Windows:
    """Tokenize a corpus once and cut it into windows (see the module docstring).

    Args:
        corpus: the texts.
        tokenizer: a Hugging Face (fast) tokenizer.
        window: tokens per window (>= 2).
        mode: ``fixed`` or ``sentence``.
        heldout_fraction: share of windows held out, in [0, 1].
        seed: seeds the split.
        max_windows: keep only the first this many windows (tokenization
            stops once they are available).
        skip_windows: leave out the first this many windows (e.g. the text
            programs were synthesized from), before `max_windows` applies.

    Returns:
        `Windows`.

    Raises:
        CorpusError: bad arguments, or fewer than 2 windows.
    """
    if mode not in WINDOW_MODES:
        raise CorpusError(f"unknown window mode {mode!r}; choose one of {', '.join(WINDOW_MODES)}")
    if window < 2:
        raise CorpusError(f"window must be at least 2 tokens, got {window}")
    if not 0.0 <= heldout_fraction <= 1.0:
        raise CorpusError(f"heldout_fraction must be in [0, 1], got {heldout_fraction}")
    if max_windows is not None and max_windows < 2:
        raise CorpusError(f"max_windows must be at least 2, got {max_windows}")
    if skip_windows < 0:
        raise CorpusError(f"skip_windows must be >= 0, got {skip_windows}")
    if not corpus.texts:
        raise CorpusError(f"{corpus.source}: corpus has no text")
    if mode == "sentence" and not getattr(tokenizer, "is_fast", False):
        raise CorpusError("sentence mode needs a fast (Rust) tokenizer for character offsets; use --mode fixed")

    from attnc.runtime.models import tokenizer_name

    separator = _encode(tokenizer, [TEXT_SEPARATOR])[0][0]
    stream: list[int] = []
    starts: list[int] = []  # sentence starts (positions in the stream), sentence mode only
    for begin in range(0, len(corpus.texts), _TOKENIZE_CHUNK):
        chunk = list(corpus.texts[begin:begin + _TOKENIZE_CHUNK])
        encoded, offsets = _encode(tokenizer, chunk, offsets=(mode == "sentence"))
        for k, ids in enumerate(encoded):
            if stream:
                stream.extend(separator)
            if mode == "sentence":
                starts.extend(len(stream) + p for p in _sentence_start_tokens(chunk[k], offsets[k]))
            stream.extend(ids)
        if max_windows is not None and \
                len(_window_starts(len(stream), starts, window, mode)) >= skip_windows + max_windows:
            break

    chosen = _window_starts(len(stream), starts, window, mode)[skip_windows:]
    if max_windows is not None:
        chosen = chosen[:max_windows]
    if len(chosen) < 2:
        skipped = f" after skipping {skip_windows}" if skip_windows else ""
        raise CorpusError(
            f"{corpus.source}: {len(stream)} tokens give {len(chosen)} window(s) of {window} tokens "
            f"in {mode} mode{skipped}; at least 2 are needed - use a bigger corpus or a smaller window"
        )
    tokens = np.asarray(stream, dtype=np.int64)
    ids = tokens[np.asarray(chosen, dtype=np.int64)[:, None] + np.arange(window)[None, :]]
    return Windows(
        ids=ids,
        split=split_windows(len(chosen), heldout_fraction, seed),
        window=window,
        mode=mode,
        seed=seed,
        heldout_fraction=heldout_fraction,
        corpus_sha256=corpus.sha256,
        corpus_source=corpus.source,
        tokenizer_name=tokenizer_name(tokenizer),
        n_stream_tokens=len(stream),
    )


def split_windows(n_windows: int, heldout_fraction: float, seed: int) -> np.ndarray:
    """Seeded held-out mask over `n_windows` windows (True = held out)."""
    n_heldout = int(round(n_windows * heldout_fraction))
    if 0.0 < heldout_fraction < 1.0 and n_windows >= 2:
        n_heldout = min(max(n_heldout, 1), n_windows - 1)
    order = np.random.default_rng(seed).permutation(n_windows)
    split = np.zeros(n_windows, dtype=bool)
    split[order[:n_heldout]] = True
    return split


def check_window_fits(window: int, loaded) -> None:
    """Raise `WindowTooLongError` if `window` exceeds the model's context length.

    Args:
        window: tokens per window.
        loaded: an `attnc.runtime.models.LoadedModel`.
    """
    if window > loaded.max_positions:
        raise WindowTooLongError(
            f"window of {window} tokens is longer than {loaded.name}'s context of "
            f"{loaded.max_positions} tokens; use --window {loaded.max_positions} or less"
        )


def _encode(tokenizer, texts: list[str], offsets: bool = False):
    result = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=offsets)
    return result["input_ids"], (result["offset_mapping"] if offsets else None)


def _sentence_start_tokens(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Token positions (within one text) where a sentence starts; 0 always does."""
    if not offsets:
        return []
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    starts = [0]
    e = 0
    for position in range(1, len(offsets)):
        token_start = offsets[position][0]
        while e < len(ends) and ends[e] <= offsets[position - 1][0]:
            e += 1  # sentence ends inside earlier tokens are already used
        if e < len(ends) and ends[e] <= token_start:
            starts.append(position)
            while e < len(ends) and ends[e] <= token_start:
                e += 1
    return starts


def _window_starts(n_tokens: int, sentence_starts: list[int], window: int, mode: str) -> list[int]:
    if mode == "fixed":
        return list(range(0, n_tokens - window + 1, window))
    chosen: list[int] = []
    next_free = 0
    for start in sentence_starts:
        if start >= next_free and start + window <= n_tokens:
            chosen.append(start)
            next_free = start + window
    return chosen
