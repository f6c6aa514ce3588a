"""Pass 3: token-string expressions -> per-vocabulary lookup tables.

Every largest sub-expression that depends only on one token's string (and
constants) — `w.tok[k].lower() in {"he", "she"}`, `tokens[i].startswith("Ġ")`,
`len(tokens[j])` — is replaced by `Lookup(table, position)`: the expression is
evaluated once per vocabulary entry into an int/bool/float array indexed by
token id. A bare token string (`tokens[i] == tokens[j]`) becomes a table of
interned string ids, so comparing two tokens compares two integers. No Python
string reaches a hot loop.

Tables are built lazily, per (vocabulary, table source), and cached: every
program that asks `t.isalpha()` shares one table. A vocabulary entry on which
the expression raises (e.g. `t[0]` on an empty token) is flagged, and the
error is raised only if a program actually reads that entry.
"""

from __future__ import annotations

import ast
import threading
import weakref
from dataclasses import dataclass

import numpy as np

from attnc.compiler.ir import (
    BOOL, FLOAT, INT, STR, Feature, Lookup, Matrix, Pos, TableSpec, TokStr, WinLen, dump,
)
from attnc.compiler.value_types import STR_METHODS, infer_type
from attnc.dsl.ast_copy import clone

#: Node types allowed inside a hoisted expression (besides `TokStr`).
_HOISTABLE = (
    ast.Constant, ast.Compare, ast.BoolOp, ast.UnaryOp, ast.BinOp, ast.IfExp, ast.Call, ast.Attribute,
    ast.Subscript, ast.Slice, ast.Set, ast.List, ast.Tuple, ast.Dict, ast.Load,
    ast.cmpop, ast.boolop, ast.unaryop, ast.operator,
)
_TABLE_BUILTINS = {"len": len, "min": min, "max": max, "abs": abs, "int": int, "float": float,
                   "bool": bool, "ord": ord, "str": str}
_TABLE_ERRORS = (IndexError, ValueError, TypeError, ZeroDivisionError, KeyError, OverflowError, AttributeError)


def hoist_token_expressions(tree, tables: list[TableSpec]):
    """Replace single-token string expressions in `tree` (an expression or statement).

    Args:
        tree: IR node, owned by the caller (rewritten in place where possible).
        tables: the program's table list; new tables are appended (deduplicated).

    Returns:
        The rewritten node.

    Raises:
        UnsupportedError: a token-string expression whose type is unknown.
    """
    return _Hoister(tables).visit(tree)


class _Hoister(ast.NodeTransformer):
    def __init__(self, tables: list[TableSpec]):
        self.tables = tables

    def generic_visit(self, node):
        if isinstance(node, ast.expr) and not isinstance(node, Lookup):
            index = _single_token_index(node)
            if index is not None:
                return self._table(node, index)
        return super().generic_visit(node)

    def _table(self, node: ast.expr, index: ast.expr) -> Lookup:
        kind = infer_type(node)
        body = _TokToT().visit(clone(node))
        source = ast.unparse(body)
        spec = TableSpec(source=source, kind=kind)
        if spec not in self.tables:
            self.tables.append(spec)
        return Lookup(table=self.tables.index(spec), index=index)


class _TokToT(ast.NodeTransformer):
    def visit_TokStr(self, node):
        return ast.Name(id="t", ctx=ast.Load())


def _single_token_index(node: ast.expr) -> ast.expr | None:
    """The position expression if `node` reads exactly one token string and nothing else."""
    index_key: str | None = None
    index: ast.expr | None = None
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, TokStr):
            key = dump(current.index)
            if index_key is None:
                index_key, index = key, current.index
            elif key != index_key:
                return None
            continue
        if isinstance(current, (Feature, Pos, WinLen, Lookup, Matrix, ast.Name)):
            return None
        if not isinstance(current, _HOISTABLE):
            return None
        if isinstance(current, ast.Attribute) and current.attr not in STR_METHODS \
                and not (current.attr == "get" and isinstance(current.value, ast.Dict)):  # {...}.get(token, d)
            return None
        if isinstance(current, ast.Call) and isinstance(current.func, ast.Name):
            if current.func.id not in _TABLE_BUILTINS:
                return None
            stack.extend(current.args)
            continue
        stack.extend(ast.iter_child_nodes(current))
    return index


# ---- building tables for a vocabulary ------------------------------------------


@dataclass(frozen=True)
class BuiltTable:
    """A table's values per token id, and where evaluating it raised."""

    values: np.ndarray
    errors: np.ndarray  # bool [V]; True where the expression raised
    first_error: str


_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _vocab_cache(vocab) -> dict:
    with _LOCK:
        cache = _CACHE.get(vocab)
        if cache is None:
            cache = {"intern": {}, "tables": {}}
            for token in vocab.tokens:  # the same numbering as Vocab.string_ids
                cache["intern"].setdefault(token, len(cache["intern"]))
            _CACHE[vocab] = cache
        return cache


def build_table(spec: TableSpec, vocab) -> BuiltTable:
    """Evaluate a table's expression for every vocabulary entry (cached per vocab).

    The expression is an allow-listed string expression taken from a validated
    program (see `_single_token_index`); it runs with no builtins but a few
    pure functions.
    """
    cache = _vocab_cache(vocab)
    key = (spec.source, spec.kind)
    built = cache["tables"].get(key)
    if built is not None:
        return built
    if spec.source == "t" and spec.kind == STR:
        values = np.asarray(vocab.string_ids, dtype=np.int64)
        built = BuiltTable(values, np.zeros(len(values), dtype=bool), "")
        cache["tables"][key] = built
        return built
    function = eval(compile(f"lambda t: ({spec.source})", "<attnc table>", "eval"),
                    {"__builtins__": {}, **_TABLE_BUILTINS})
    dtype = {BOOL: np.bool_, INT: np.int64, FLOAT: np.float64, STR: np.int64}[spec.kind]
    built = (_membership_table(spec.source, function, dtype, vocab, cache) if spec.kind != STR else None) \
        or _per_token_table(spec, function, dtype, vocab, cache)
    cache["tables"][key] = built
    return built


def _per_token_table(spec: TableSpec, function, dtype, vocab, cache: dict) -> BuiltTable:
    """The general path: the expression evaluated once per vocabulary entry."""
    values = np.zeros(vocab.size, dtype=dtype)
    errors = np.zeros(vocab.size, dtype=bool)
    first_error = ""
    intern = cache["intern"]
    for token_id, token in enumerate(vocab.tokens):
        try:
            value = function(token)
            if spec.kind == STR:
                if not isinstance(value, str):
                    raise TypeError(f"expected a string, got {type(value).__name__}")
                value = intern.setdefault(value, len(intern))
            values[token_id] = value
        except _TABLE_ERRORS as exc:
            errors[token_id] = True
            if not first_error:
                first_error = f"{spec.source} on token {token!r}: {type(exc).__name__}: {exc}"
    return BuiltTable(values, errors, first_error)


#: A token string no vocabulary holds: stands for every token outside a program's literal sets.
_OUTSIDE = "\x00attnc: no such token\x00"


def _membership_strings(source: str) -> frozenset[str] | None:
    """The literal strings `t` is tested against, when `t` appears only as `t in {...}` / `t not in (...)`
    with literal strings (the shape of token-set terms); else None."""
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        return None
    members: set[str] = set()
    tested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name) and node.left.id == "t" \
                and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)) \
                and isinstance(node.comparators[0], (ast.Set, ast.Tuple, ast.List, ast.Dict)):
            container = node.comparators[0]
            items = container.keys if isinstance(container, ast.Dict) else container.elts
            if not all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in items):
                return None
            members.update(e.value for e in items)
            tested.add(id(node.left))
    uses = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "t"]
    return frozenset(members) if uses and all(id(n) in tested for n in uses) else None


def _membership_table(source: str, function, dtype, vocab, cache: dict) -> BuiltTable | None:
    """The table of an expression that reads the token only through literal-set membership, in
    O(set size): its value is the same for every token outside the sets, so it is evaluated once
    for those and once per listed string, never per vocabulary entry. None: not that shape, or
    the expression raised (the general path then reports where)."""
    members = _membership_strings(source)
    if members is None:
        return None
    by_string = cache.get("by_string")
    if by_string is None:
        by_string = {}
        for token_id, token in enumerate(vocab.tokens):
            by_string.setdefault(token, []).append(token_id)
        cache["by_string"] = by_string
    try:
        outside = function(_OUTSIDE)
        listed = {m: function(m) for m in members if m in by_string}
    except _TABLE_ERRORS:
        return None
    values = np.full(vocab.size, outside, dtype=dtype)
    for member, value in listed.items():
        values[by_string[member]] = value
    return BuiltTable(values, np.zeros(vocab.size, dtype=bool), "")


def hoist_program(program):
    """Pass 3 on a NormalizedProgram: hoist token-string expressions in place.

    Returns:
        The same program with `expr`/`body` rewritten and `tables` filled.
    """
    tables: list[TableSpec] = list(program.tables)
    if program.expr is not None:
        program.expr = hoist_token_expressions(program.expr, tables)
    program.body = [hoist_token_expressions(stmt, tables) for stmt in program.body]
    program.tables = tables
    return program
