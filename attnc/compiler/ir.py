"""The compiler's intermediate form: Python `ast` nodes plus a few window nodes.

After lowering and normalizing, a program is ordinary `ast` statements and
expressions in which every way of reading the window has been replaced by one
of the nodes below, so later passes never need to know whether the program was
written in the native or the paper form:

- `Pos("q")` / `Pos("k")`: the query / key position of a native program.
- `WinLen()`: the window length n.
- `Feature(name, index)`: `w.<name>[index]` for a name in FEATURE_NAMES or a
  syntax feature (`ids` included: in the paper form `toks.input_ids[0][i]`
  becomes `Feature("ids", i)`). Label features (`w.pos`, ...) are strings in
  programs and int codes in kernels: labels.py rewrites their comparisons.
- `TokStr(index)`: the token string at `index` (`w.tok[i]`, `tokens[i]`).
- `Lookup(table, index)`: a hoisted per-vocabulary table, read at the token
  id of position `index` (built by hoisting.py).
- `Matrix(fill)`: the paper form's output matrix (`np.zeros((n, n))`, fill 0.0;
  `np.ones`, fill 1.0).

Value types are plain strings: "bool", "int", "float", "str", and "none".
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from attnc.window_syntax import LABEL_FEATURES

BOOL, INT, FLOAT, STR = "bool", "int", "float", "str"
NUMERIC = (BOOL, INT, FLOAT)

#: Feature value types (attnc/window.py, FEATURE_NAMES).
FEATURE_TYPES = {
    "ids": INT,
    "word_start": BOOL,
    "is_punct": BOOL,
    "word_id": INT,
    "sent_start": BOOL,
    "sent_id": INT,
    "last_punct": INT,
    "prev_same": INT,
    "open_bracket": INT,
    **{name: BOOL for name in ("is_det", "is_pron", "is_prep", "is_conj", "is_aux", "is_sent_punct", "is_comma",
                               "is_quote", "is_newline", "is_cap", "is_number")},
    # syntax features (attnc/window_syntax.py): label features reach kernels as int codes (labels.py)
    "dep_head": INT,
    **{name: INT for name in LABEL_FEATURES},
}


class Pos(ast.expr):
    _fields = ("axis",)


class WinLen(ast.expr):
    _fields = ()


class Feature(ast.expr):
    _fields = ("name", "index")


class TokStr(ast.expr):
    _fields = ("index",)


class Lookup(ast.expr):
    _fields = ("table", "index")


class Matrix(ast.expr):
    _fields = ("fill",)


@dataclass(frozen=True)
class TableSpec:
    """One hoisted per-vocabulary table.

    Attributes:
        source: a Python expression over the token string `t` (e.g.
            `t.lower() in {'he', 'she'}`), evaluated once per vocabulary entry.
        kind: value type of the table ("bool", "int", "float" or "str";
            "str" tables hold interned string ids, see hoisting.py).
    """

    source: str
    kind: str


class UnsupportedError(Exception):
    """A construct a pass or backend cannot handle; the message says which and why."""


def join_types(types: list[str]) -> str:
    """The type of a value that may come from any of `types` (Python truthiness ops, ifexp)."""
    uniq = set(types)
    if len(uniq) == 1:
        return uniq.pop()
    if uniq <= set(NUMERIC):
        return FLOAT if FLOAT in uniq else INT
    raise UnsupportedError(f"a value mixes types {sorted(uniq)}")


def dump(node: ast.AST) -> str:
    """A stable text key for a node (custom IR nodes included)."""
    return ast.dump(node, annotate_fields=False, include_attributes=False)
