"""The model/corpus/window options shared by every command that runs a model over windows."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model and --batch-size, for every command that runs a model."""
    parser.add_argument("--model", default="smollm2-135m",
                        help="smollm2-135m (embedded), a .gguf file, or a local Hugging Face model directory")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: 8)")


def add_corpus_arguments(parser: argparse.ArgumentParser, *, corpus_required: bool = True) -> None:
    """The model options plus --corpus, --text-field, --window, --mode, --heldout-fraction, --max-windows,
    --skip-windows, --seed."""
    add_model_arguments(parser)
    parser.add_argument("--corpus", required=corpus_required, type=Path,
                        help="text file (blank-line paragraphs), .jsonl, or a directory")
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    parser.add_argument("--window", type=int, default=128, help="tokens per window (default: 128)")
    parser.add_argument("--mode", choices=("fixed", "sentence"), default="fixed", help="window mode (default: fixed)")
    parser.add_argument("--heldout-fraction", type=float, default=0.5, help="share of windows held out (default: 0.5)")
    parser.add_argument("--max-windows", type=int, default=None, help="use only the first K windows of the corpus")
    parser.add_argument("--skip-windows", type=int, default=0,
                        help="leave out the corpus's first K windows, e.g. text programs were synthesized from")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fit/held-out split (default: 0)")


def load_model_and_windows(args: argparse.Namespace, **model_options):
    """Read the corpus (fails fast, before the model loads), load the model, cut windows.

    Args:
        args: parsed options of `add_corpus_arguments`.
        model_options: passed to `load_model` (e.g. attn_implementation).

    Returns:
        (corpus, loaded model, windows).

    Raises:
        CorpusError, WindowTooLongError, ModelNotFoundError, ModelLoadError.
    """
    from attnc.runtime.corpus import check_window_fits, make_windows, read_corpus
    from attnc.runtime.models import load_model

    corpus = read_corpus(args.corpus, text_field=args.text_field)
    loaded = load_model(args.model, **model_options)
    check_window_fits(args.window, loaded)
    windows = make_windows(corpus, loaded.tokenizer, window=args.window, mode=args.mode,
                           heldout_fraction=args.heldout_fraction, seed=args.seed, max_windows=args.max_windows,
                           skip_windows=args.skip_windows)
    return corpus, loaded, windows


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean bad input (reported in one line, exit 2), not a bug."""
    from attnc.compiler.library_format import LibraryError
    from attnc.parallel.pools import PoolError
    from attnc.runtime.corpus import CorpusError
    from attnc.runtime.models import ModelLoadError, ModelNotFoundError
    from attnc.runtime.store import StoreError

    return (CorpusError, ModelNotFoundError, ModelLoadError, StoreError, LibraryError, PoolError, ValueError,
            FileNotFoundError)
