"""`attnc extract`: corpus -> windows -> attention store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "extract",
        help="run a model over corpus windows and store its attention maps",
        description=(
            "Tokenize a corpus once, cut it into windows, run the model with eager attention and "
            "write the chosen heads' maps (float16 safetensors shards) to --out. Rerunning the same "
            "command resumes an interrupted extraction."
        ),
    )
    parser.add_argument("--model", default="smollm2-135m", help="smollm2-135m (embedded), a .gguf file or a local model directory")
    parser.add_argument("--corpus", required=True, type=Path, help="text file (blank-line paragraphs), .jsonl, or a directory")
    parser.add_argument("--text-field", default="text", help="JSONL field holding the text (default: text)")
    parser.add_argument("--window", type=int, default=128, help="tokens per window (default: 128)")
    parser.add_argument("--mode", choices=("fixed", "sentence"), default="fixed", help="window mode (default: fixed)")
    parser.add_argument("--heads", default=None, help="heads as layer.head, comma separated (also L.* and all); default all")
    parser.add_argument("--split", choices=("fit", "heldout", "all"), default="all", help="which windows to extract (default: all)")
    parser.add_argument("--heldout-fraction", type=float, default=0.5, help="share of windows held out (default: 0.5)")
    parser.add_argument("--max-windows", type=int, default=None, help="use only the first K windows of the corpus")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fit/held-out split (default: 0)")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per forward pass (default: 8)")
    parser.add_argument("--shard-size", type=int, default=None, help="windows per shard file (default: ~256 MiB of maps)")
    parser.add_argument("--out", required=True, type=Path, help="store directory")
    parser.add_argument("--overwrite", action="store_true", help="replace a different store already in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    parser.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    from attnc.runtime.corpus import CorpusError, check_window_fits, make_windows, read_corpus
    from attnc.runtime.extract import extract_attention
    from attnc.runtime.heads import parse_heads
    from attnc.runtime.models import ModelLoadError, ModelNotFoundError, load_model
    from attnc.runtime.store import StoreError

    try:
        corpus = read_corpus(args.corpus, text_field=args.text_field)  # fail fast, before loading the model
        loaded = load_model(args.model)
        check_window_fits(args.window, loaded)
        heads = parse_heads(args.heads, n_layers=loaded.n_layers, n_heads=loaded.n_heads) if args.heads else None
        windows = make_windows(
            corpus,
            loaded.tokenizer,
            window=args.window,
            mode=args.mode,
            heldout_fraction=args.heldout_fraction,
            seed=args.seed,
            max_windows=args.max_windows,
        )
        chosen = windows.indices(args.split)
        if len(chosen) == 0:
            raise CorpusError(f"the {args.split} split is empty (heldout fraction {args.heldout_fraction})")
        begin = time.perf_counter()
        store = extract_attention(
            loaded,
            windows.ids[chosen],
            store_dir=args.out,
            heads=heads,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            window_indices=chosen,
            corpus_sha256=corpus.sha256,
            windows_info={**windows.describe(), "extracted_split": args.split},
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        seconds = time.perf_counter() - begin
    except (CorpusError, ModelNotFoundError, ModelLoadError, StoreError, ValueError) as error:
        print(f"attnc extract: error: {error}", file=sys.stderr)
        return 2
    result = {
        "store": str(args.out),
        "model": loaded.name,
        "corpus": str(args.corpus),
        "corpus_sha256": corpus.sha256,
        "window": args.window,
        "mode": args.mode,
        "split": args.split,
        "n_windows": store.n_windows,
        "n_heads": len(store.heads),
        "n_shards": store.meta["n_shards"],
        "seconds": round(seconds, 3),
        "bytes": sum(p.stat().st_size for p in Path(args.out).glob("shard-*.safetensors")),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"extracted {result['n_windows']} windows x {result['n_heads']} heads of {loaded.name} "
            f"(window {args.window}, {args.mode}, {args.split}) into {args.out} "
            f"[{result['n_shards']} shards, {result['bytes'] / 1e6:.1f} MB, {seconds:.1f} s]"
        )
    return 0
