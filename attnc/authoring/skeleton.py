"""Starting points for a new program (`attnc new`): a commented skeleton, or a copy of another program.

Every source made here is validated with `attnc.dsl.parse_program` before it
is written, so what `attnc new` writes always passes `attnc check`.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from attnc.dsl import CheckedProgram, ProgramError, load_program, parse_program

#: Where programs live by default (and where `--like NAME` looks).
DEFAULT_PROGRAMS_DIR = Path("programs")

#: What `w` offers, one line each, as the native skeleton's comments list it
#: (docs/dsl.md has the table; a test keeps both in sync with attnc/window.py).
WINDOW_MEMBERS = (
    ("w.n", "window length"),
    ("w.ids[p]", "token id at position p"),
    ("w.tok[p]", 'token string as the tokenizer spells it ("Ġthe": Ġ = leading space, Ċ = newline)'),
    ("w.text", "the window's decoded text"),
    ("w.word_start[p]", "token starts a word (space marker, after punctuation/newline, p == 0)"),
    ("w.is_punct[p]", "token is punctuation/symbols only"),
    ("w.word_id[p]", "index of the word containing p"),
    ("w.sent_start[p]", "first token of a sentence"),
    ("w.sent_id[p]", "index of the sentence containing p"),
    ("w.last_punct[p]", "latest position < p that is punctuation, -1 if none"),
    ("w.prev_same[p]", "latest position < p with the same token id, -1 if none"),
    ("w.open_bracket[p]", "innermost bracket/quote still open before p, -1 if none"),
    ("w.is_det[p]", "token classes (whole words): determiner ..."),
    ("w.is_pron[p]", "... pronoun"),
    ("w.is_prep[p]", "... preposition"),
    ("w.is_conj[p]", "... conjunction"),
    ("w.is_aux[p]", "... auxiliary or modal verb"),
    ("w.is_sent_punct[p]", "sentence-final punctuation (. ! ?)"),
    ("w.is_comma[p]", "comma-like punctuation (, ; :)"),
    ("w.is_quote[p]", "quotation mark"),
    ("w.is_newline[p]", "token holds a newline"),
    ("w.is_cap[p]", "word starting with a capital letter (names, sentence starts)"),
    ("w.is_number[p]", "digits, or a number word"),
    ("w.pos[p]", 'syntax, with the spaCy extra (attnc[spacy]): part of speech of p\'s word ("NOUN", "VERB")'),
    ("w.tag[p]", '... fine-grained tag ("NN", "VBD")'),
    ("w.dep[p]", '... dependency label ("nsubj", "ROOT")'),
    ("w.dep_head[p]", "... first token of the head word (a root: itself; whitespace tokens: -1)"),
    ("w.lemma[p]", '... lemma ("be" for was)'),
    ("w.ent_type[p]", '... named-entity type ("" outside entities)'),
)

_OUTPUT_RULE = """\
# Output rule (the runtime applies it, identically in every backend): NaN, inf
# or a wrong shape is an error; negatives are clipped to 0; keys after the
# query (k > q) are masked; each row is divided by its sum; a row of zeros puts
# all its weight on the query itself. Write nothing above the diagonal and no
# negative weights: `attnc check --props` fails a program whose raw output does."""

_NATIVE = '''\
"""{name}: (one line: what this head does)."""


def {name}(q: int, k: int, w: Window) -> float:
    """(Which keys each query attends to, and why.)"""
    # The raw weight query position q puts on key position k, for 0 <= q, k < w.n.
    #
    # What w offers (attnc/window.py; docs/dsl.md):
{members}
    # Token strings have the usual string methods: w.tok[k].lower(), .isalpha(), ...
    #
{rule}
    #
    # Start: the previous token (position 0 has none and falls back to itself).
    return 1.0 if k == q - 1 else 0.0
'''

_PAPER = '''\
"""{name}: (one line: what this head does)."""

import numpy as np


def {name}(sentence: str, tokenizer) -> tuple[str, np.ndarray]:
    """(Which keys each query attends to, and why.)"""
    # `sentence` is the window's text; `tokenizer` is bound to the window's own
    # token ids (nothing is re-tokenized). Supported idioms: tokenizer([sentence],
    # return_tensors="np").input_ids, tokenizer.convert_ids_to_tokens(ids),
    # tokenizer.decode(ids), .word_ids() (docs/dsl.md, "Form 2").
    #
{rule}
    toks = tokenizer([sentence], return_tensors="np")
    n = len(toks.input_ids[0])
    tokens = tokenizer.convert_ids_to_tokens(toks.input_ids[0])
    out = np.zeros((n, n))
    # Start: the previous token (row 0 has no earlier key and falls back to itself).
    for i in range(1, n):
        out[i, i - 1] = 1.0
    return "previous token", out
'''

FORMS = ("native", "paper")


class AuthoringError(ValueError):
    """A new program could not be made (bad name, file exists, source program invalid)."""


def check_name(name: str) -> str:
    """Return `name` if it can name a program's entry point, else raise AuthoringError."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) or keyword.iskeyword(name):
        raise AuthoringError(f"{name!r} cannot name a program: use an ASCII identifier that starts with a letter "
                             "(it becomes the entry function's name and the file name), e.g. previous_comma")
    return name


def _commented(text: str, indent: str = "    ") -> str:
    return "\n".join(indent + line if line else indent.rstrip() for line in text.splitlines())


def skeleton_source(name: str, form: str = "native") -> str:
    """A commented program named `name` in `form` ("native" or "paper"), valid as it stands.

    Raises:
        AuthoringError: bad name or form.
    """
    check_name(name)
    if form not in FORMS:
        raise AuthoringError(f"unknown form {form!r}; choose native or paper")
    width = max(len(member) for member, _ in WINDOW_MEMBERS)
    members = "\n".join(f"    #   {member:<{width}}  {meaning}" for member, meaning in WINDOW_MEMBERS)
    rule = _commented(_OUTPUT_RULE)
    template = _NATIVE if form == "native" else _PAPER
    source = template.format(name=name, members=members, rule=rule)
    _validate(source, f"<new {name}>")
    return source


def resolve_program(spec: str, programs_dir: Path = DEFAULT_PROGRAMS_DIR) -> Path:
    """A program path from a path or a name found in `programs_dir` (`previous_token`, `previous_token.py`).

    Raises:
        AuthoringError: no such file.
    """
    path = Path(spec)
    if path.is_file():
        return path
    candidate = programs_dir / (spec if spec.endswith(".py") else f"{spec}.py")
    if candidate.is_file():
        return candidate
    raise AuthoringError(f"--like {spec}: no such file, and no {candidate}; give a path or the name of a program "
                         f"in {programs_dir}/")


def like_source(program: CheckedProgram, name: str) -> str:
    """`program`'s source with its entry point renamed to `name` (helpers and constants kept).

    Raises:
        AuthoringError: bad name, or the renamed source does not validate
            (e.g. `name` is already a helper's name).
    """
    check_name(name)
    lines = program.source.splitlines(keepends=True)
    index = program.entry.lineno - 1
    renamed, count = re.subn(rf"\bdef(\s+){re.escape(program.name)}\b", rf"def\g<1>{name}", lines[index], count=1)
    if count != 1:
        raise AuthoringError(f"{program.path}:{index + 1}: could not find `def {program.name}` to rename")
    lines[index] = renamed
    header = f"# Started from {program.path} ({program.name}) with `attnc new --like`.\n"
    source = header + "".join(lines)
    _validate(source, f"<new {name}>")
    return source


def _validate(source: str, where: str) -> CheckedProgram:
    try:
        return parse_program(source, where)
    except ProgramError as exc:
        raise AuthoringError(f"the new program does not validate:\n{exc}") from exc


def new_program(name: str, *, out_dir: Path = DEFAULT_PROGRAMS_DIR, form: str = "native",
                like: str | None = None, programs_dir: Path = DEFAULT_PROGRAMS_DIR) -> Path:
    """Write `out_dir/name.py`: a skeleton in `form`, or a copy of `like` renamed to `name`.

    Args:
        name: the program's (entry function's) name; the file is `name.py`.
        out_dir: directory to write into (created if missing).
        form: "native" or "paper" (ignored with `like`).
        like: a program path or name in `programs_dir` to start from.
        programs_dir: where `like` names are looked up.

    Returns:
        The path written.

    Raises:
        AuthoringError: bad name/form, the file exists (never overwritten), or
            `like` is missing or invalid.
    """
    check_name(name)
    if like is not None:
        source_path = resolve_program(like, programs_dir)
        try:
            source = like_source(load_program(source_path), name)
        except ProgramError as exc:
            raise AuthoringError(f"--like {like}: {source_path} does not validate:\n{exc}") from exc
    else:
        source = skeleton_source(name, form)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.py"
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(source)
    except FileExistsError as exc:
        raise AuthoringError(f"{path} exists; attnc new never overwrites a program: pick another name, "
                             "or edit the existing file") from exc
    return path
