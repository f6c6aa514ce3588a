"""Pass 2: lowered program -> normalized IR (window reads become IR nodes).

Both program forms read the same window; this pass makes them say so the same
way (attnc/compiler/ir.py):

- native: `q`, `k` -> `Pos`, `w.n`/`len(w.tok)` -> `WinLen`,
  `w.<feature>[p]` -> `Feature`, `w.tok[p]` -> `TokStr`.
- paper: `toks = tokenizer([sentence], ...)`, `toks.input_ids[0]` (the window's
  ids), `len(...)` of ids or tokens -> `WinLen`,
  `tokenizer.convert_ids_to_tokens(ids)` -> a token list whose items are
  `TokStr`, `for i, t in enumerate(tokens)` -> a loop over positions with `t`
  read as `TokStr(i)`, `out = np.zeros((n, n))` -> the output `Matrix`.
  Anything else touching `sentence` or `tokenizer` is unsupported (interpreted).

`out += eps` and `out = out / out.sum(axis=1, keepdims=True)` are kept as the
array operations they are: `+= eps` makes an all-zero row uniform, which the
output rule alone would not, so the backends execute them exactly.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field

from attnc.compiler.ir import FEATURE_TYPES, Feature, Matrix, Pos, TokStr, UnsupportedError, WinLen
from attnc.compiler.lowering import LoweredProgram, flatten_body
from attnc.dsl.ast_copy import clone


def normalize_native(lowered: LoweredProgram, expr: ast.expr | None) -> tuple[ast.expr | None, list[ast.stmt]]:
    """Rewrite a native program's window reads into IR nodes.

    Args:
        lowered: the lowered program (its params are q, k, w by position).
        expr: the if-converted return expression, or None when the body loops.

    Returns:
        (normalized expression or None, normalized statement body).

    Raises:
        UnsupportedError: the body assigns a parameter or uses `w` in another way.
    """
    q_name, k_name, w_name = lowered.params[:3]
    for stmt in lowered.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id in lowered.params:
                raise UnsupportedError(f"assignment to parameter {node.id!r}")
    rewriter = _NativeRewriter(q_name, k_name, w_name)
    new_expr = rewriter.visit(expr) if expr is not None else None  # flattening made a private copy
    body = [rewriter.visit(clone(s)) for s in lowered.body]
    counts = Counter(
        node.id for stmt in body for node in ast.walk(stmt)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    )
    return new_expr, _substitute_token_locals(body, counts)


class _NativeRewriter(ast.NodeTransformer):
    def __init__(self, q_name: str, k_name: str, w_name: str):
        self.q, self.k, self.w = q_name, k_name, w_name

    def _is_w(self, node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == self.w

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load):
            if node.id == self.q:
                return Pos(axis="q")
            if node.id == self.k:
                return Pos(axis="k")
            if node.id == self.w:
                raise UnsupportedError(f"the window `{self.w}` used other than as `{self.w}.<field>`")
        return node

    def visit_Attribute(self, node: ast.Attribute):
        if self._is_w(node.value):
            if node.attr == "n":
                return WinLen()
            raise UnsupportedError(f"`{self.w}.{node.attr}` used other than indexed by a position")
        return self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript):
        target = node.value
        if isinstance(target, ast.Attribute) and self._is_w(target.value):
            if isinstance(node.slice, ast.Slice) or isinstance(node.slice, ast.Tuple):
                raise UnsupportedError(f"slicing `{self.w}.{target.attr}`")
            index = self.visit(node.slice)
            if target.attr == "tok":
                return TokStr(index=index)
            if target.attr in FEATURE_TYPES:
                return Feature(name=target.attr, index=index)
            raise UnsupportedError(f"`{self.w}.{target.attr}[...]` is not a per-position feature")
        return self.generic_visit(node)

    def visit_Call(self, node: ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, ast.Attribute) and self._is_w(arg.value) and (arg.attr == "tok" or arg.attr in FEATURE_TYPES):
                return WinLen()
        return self.generic_visit(node)


# ---- paper form -------------------------------------------------------------

_ENCODING, _IDS2D, _IDS, _TOKENS, _LEN = "encoding", "ids2d", "ids", "tokens", "len"


def normalize_paper(lowered: LoweredProgram) -> list[ast.stmt]:
    """Rewrite a paper-form body: tokenizer idioms -> window IR nodes.

    Returns:
        The body, with the idiom assignments removed and `return (desc, out)`
        reduced to `return out`.

    Raises:
        UnsupportedError: an idiom outside the recognised set, with the reason.
    """
    sentence, tokenizer = lowered.params[:2]
    counts = Counter(
        node.id
        for stmt in lowered.body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)
    )
    mutated = {
        node.func.value.id
        for stmt in lowered.body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
        and node.func.attr != "get"  # dict.get only reads: a constant dict stays a constant
    } | {
        node.value.id
        for stmt in lowered.body
        for node in ast.walk(stmt)
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name)
    }
    rewriter = _PaperRewriter(sentence, tokenizer, counts, mutated)
    body: list[ast.stmt] = []
    for stmt in lowered.body:
        new = rewriter.statement(stmt)
        if new is not None:
            body.append(new)
    body = _substitute_token_locals(body, counts)
    if not any(isinstance(n, Matrix) for s in body for n in ast.walk(s)):
        raise UnsupportedError("no `np.zeros((n, n))` output matrix found")
    return body


class _PaperRewriter(ast.NodeTransformer):
    def __init__(self, sentence: str, tokenizer: str, counts: Counter, mutated: set[str]):
        self.sentence, self.tokenizer = sentence, tokenizer
        self.counts = counts
        self.mutated = mutated
        self.kinds: dict[str, str] = {}
        #: name -> (element expression, item variable, index variable or None):
        #: `xs = [f(t) for t in tokens]`, read as `xs[p]` -> f(TokStr(p)).
        self.position_lists: dict[str, tuple] = {}
        #: name -> literal container of constants assigned once and never mutated.
        self.constants: dict[str, ast.expr] = {}

    def _per_position_list(self, name: str, value: ast.expr) -> bool:
        if not (isinstance(value, ast.ListComp) and len(value.generators) == 1):
            return False
        gen = value.generators[0]
        if gen.ifs:
            return False
        item_var = index_var = None
        it = gen.iter
        if isinstance(gen.target, ast.Name) and self._kind(it) in (_TOKENS, _IDS):
            item_var, source = gen.target.id, self._kind(it)
        elif isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" \
                and len(it.args) == 1 and self._kind(it.args[0]) in (_TOKENS, _IDS) \
                and isinstance(gen.target, ast.Tuple) and all(isinstance(e, ast.Name) for e in gen.target.elts) \
                and len(gen.target.elts) == 2:
            index_var, item_var = (e.id for e in gen.target.elts)
            source = self._kind(it.args[0])
        elif isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
                and len(it.args) == 1 and isinstance(gen.target, ast.Name) \
                and isinstance(self.visit(clone(it.args[0])), WinLen):
            index_var, item_var, source = gen.target.id, None, None
        else:
            return False
        self.position_lists[name] = (value.elt, item_var, index_var, source)
        return True

    def _read_position_list(self, name: str, index: ast.expr) -> ast.expr:
        elt, item_var, index_var, source = self.position_lists[name]
        env: dict[str, ast.expr] = {}
        if item_var is not None:
            env[item_var] = TokStr(index=index) if source == _TOKENS else Feature(name="ids", index=index)
        if index_var is not None:
            env[index_var] = index
        return self.visit(_subst_expr(elt, env))

    def statement(self, stmt: ast.stmt) -> ast.stmt | None:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            name = stmt.targets[0].id
            if self.counts[name] == 1 and name not in self.mutated and self._per_position_list(name, stmt.value):
                return None
            if self.counts[name] == 1 and _is_constant_container(stmt.value) and name not in self.mutated:
                self.constants[name] = stmt.value
                return None
            kind = self._kind(stmt.value)
            if kind is not None:
                if self.counts[name] != 1:
                    raise UnsupportedError(f"`{name}` holds {kind} and is reassigned")
                self.kinds[name] = kind
                return None
        if isinstance(stmt, ast.Return) and isinstance(stmt.value, ast.Tuple) and len(stmt.value.elts) == 2:
            stmt = ast.Return(value=stmt.value.elts[1])
        return self.visit(stmt)

    # What a value is, when it is one of the window idioms.
    def _kind(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name) and node.id in self.kinds:
            return self.kinds[node.id]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == self.tokenizer:
                if node.args and self._is_sentence_arg(node.args[0]):
                    return _ENCODING
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == self.tokenizer:
                if func.attr == "convert_ids_to_tokens" and len(node.args) == 1 and self._kind(node.args[0]) == _IDS:
                    return _TOKENS
            if isinstance(func, ast.Attribute) and func.attr == "tolist" and not node.args and self._kind(func.value) in (_IDS, _IDS2D):
                return self._kind(func.value)
            if isinstance(func, ast.Name) and func.id == "list" and len(node.args) == 1 and self._kind(node.args[0]) in (_IDS, _TOKENS):
                return self._kind(node.args[0])
        if isinstance(node, ast.Attribute) and node.attr == "input_ids" and self._kind(node.value) == _ENCODING:
            return _IDS2D
        if isinstance(node, ast.Subscript):
            base = self._kind(node.value)
            if base == _ENCODING and isinstance(node.slice, ast.Constant) and node.slice.value == "input_ids":
                return _IDS2D
            if base == _IDS2D and isinstance(node.slice, ast.Constant) and node.slice.value == 0:
                return _IDS
        return None

    def _is_sentence_arg(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Name) and node.id == self.sentence:
            return True
        return isinstance(node, ast.List) and len(node.elts) == 1 and isinstance(node.elts[0], ast.Name) \
            and node.elts[0].id == self.sentence

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load):
            if node.id in self.constants:
                return clone(self.constants[node.id])
            if node.id in self.position_lists:
                raise UnsupportedError(f"per-token list `{node.id}` used other than indexed by a position")
            if node.id in (self.sentence, self.tokenizer):
                raise UnsupportedError(f"`{node.id}` used outside the recognised tokenizer idioms")
            if node.id in self.kinds:
                raise UnsupportedError(f"`{node.id}` ({self.kinds[node.id]}) used as a whole value")
        return node

    def visit_Call(self, node: ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id == "len" and len(node.args) == 1 \
                and self._kind(node.args[0]) in (_IDS, _TOKENS):
            return WinLen()
        if _is_np_call(node, "zeros", "ones") and len(node.args) == 1 and not node.keywords:
            shape = node.args[0]
            if isinstance(shape, ast.Tuple) and len(shape.elts) == 2 and all(self._is_n(e) for e in shape.elts):
                return Matrix(fill=1.0 if node.func.attr == "ones" else 0.0)
        return self.generic_visit(node)

    def _is_n(self, node: ast.expr) -> bool:
        node = self.visit(clone(node))
        return isinstance(node, WinLen) or (isinstance(node, ast.Name) and self.counts[node.id] == 1
                                            and node.id in self.window_lengths)

    @property
    def window_lengths(self) -> set[str]:
        return getattr(self, "_window_lengths", set())

    def visit_Assign(self, node: ast.Assign):
        self.generic_visit(node)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) and isinstance(node.value, WinLen):
            self._window_lengths = self.window_lengths | {node.targets[0].id}
        return node

    def visit_Subscript(self, node: ast.Subscript):
        if isinstance(node.value, ast.Name) and node.value.id in self.position_lists \
                and isinstance(node.ctx, ast.Load) and not isinstance(node.slice, (ast.Slice, ast.Tuple)):
            return self._read_position_list(node.value.id, self.visit(node.slice))
        kind = self._kind(node.value)
        if kind in (_IDS, _TOKENS):
            if isinstance(node.slice, (ast.Slice, ast.Tuple)):
                raise UnsupportedError(f"slicing the window's {kind}")
            index = self.visit(node.slice)
            return TokStr(index=index) if kind == _TOKENS else Feature(name="ids", index=index)
        if kind is not None:
            raise UnsupportedError(f"indexing {kind} other than `[0]`")
        return self.generic_visit(node)

    def visit_For(self, node: ast.For):
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "enumerate" \
                and len(it.args) == 1 and not it.keywords and self._kind(it.args[0]) in (_IDS, _TOKENS) \
                and isinstance(node.target, ast.Tuple) and len(node.target.elts) == 2 \
                and all(isinstance(e, ast.Name) for e in node.target.elts):
            index_name, item_name = (e.id for e in node.target.elts)
            if self.counts[item_name] != 1 or self.counts[index_name] != 1:
                raise UnsupportedError("enumerate() loop variables are reassigned")
            kind = self._kind(it.args[0])
            item = TokStr(index=ast.Name(id=index_name, ctx=ast.Load())) if kind == _TOKENS \
                else Feature(name="ids", index=ast.Name(id=index_name, ctx=ast.Load()))
            body = [_subst_stmt(s, {item_name: item}) for s in node.body]
            loop = ast.For(target=ast.Name(id=index_name, ctx=ast.Store()),
                           iter=ast.Call(func=ast.Name(id="range", ctx=ast.Load()), args=[WinLen()], keywords=[]),
                           body=body, orelse=node.orelse)
            return self.generic_visit(loop)
        if self._kind(it) in (_IDS, _TOKENS):
            raise UnsupportedError("looping over the window's tokens without positions (use enumerate)")
        return self.generic_visit(node)


def _is_np_call(node: ast.Call, *names: str) -> bool:
    return isinstance(node.func, ast.Attribute) and node.func.attr in names \
        and isinstance(node.func.value, ast.Name) and node.func.value.id in ("np", "numpy")


def _blocks(body: list[ast.stmt]):
    """Every statement list (function body, loop and if bodies), outermost first."""
    yield body
    for stmt in body:
        for child in ("body", "orelse"):
            inner = getattr(stmt, child, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                yield from _blocks(inner)


def _is_constant_container(node: ast.expr) -> bool:
    if isinstance(node, (ast.Set, ast.List, ast.Tuple)):
        return all(isinstance(e, ast.Constant) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(isinstance(e, ast.Constant) for e in list(node.keys) + list(node.values) if e is not None)
    return False


def _subst_expr(expr: ast.expr, env: dict[str, ast.expr]) -> ast.expr:
    return _subst_stmt(ast.Expr(value=expr), env).value


def _subst_stmt(stmt: ast.stmt, env: dict[str, ast.expr]) -> ast.stmt:
    class _Sub(ast.NodeTransformer):
        def visit_Name(self, n: ast.Name):
            if isinstance(n.ctx, ast.Load) and n.id in env:
                return clone(env[n.id])
            return n

    return _Sub().visit(clone(stmt))


def _substitute_token_locals(body: list[ast.stmt], counts: Counter) -> list[ast.stmt]:
    """Forward-substitute `t = tokens[i]`-style locals assigned once, so hoisting sees them.

    Only when the value's free names are loop variables (assigned once, by their
    `for`), so every later read sees the same value.
    """
    loop_vars = {
        n.target.id for s in body for n in ast.walk(s)
        if isinstance(n, ast.For) and isinstance(n.target, ast.Name) and counts[n.target.id] == 1
    }
    loads = Counter(
        n.id for s in body for n in ast.walk(s) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    )
    env: dict[str, ast.expr] = {}
    for block in _blocks(body):
        for position, stmt in enumerate(block):
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                continue
            name, value = stmt.targets[0].id, stmt.value
            if counts[name] != 1 or not any(isinstance(x, TokStr) for x in ast.walk(value)):
                continue
            free = {x.id for x in ast.walk(value) if isinstance(x, ast.Name)}
            # Every read must come after the assignment in the same block, so it sees this value.
            later = sum(1 for s in block[position + 1:] for n in ast.walk(s)
                        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id == name)
            if free <= loop_vars and later == loads[name]:
                env[name] = value
    if not env:
        return body

    class _Drop(ast.NodeTransformer):
        def visit_Assign(self, n: ast.Assign):
            if len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) and n.targets[0].id in env:
                return ast.Pass()
            return self.generic_visit(n)

    return [_subst_stmt(_Drop().visit(s), env) for s in body]


# ---- the pass entry point ---------------------------------------------------


@dataclass
class NormalizedProgram:
    """A program in IR: window reads as IR nodes, token strings hoisted to tables.

    Attributes:
        name, form: as in CheckedProgram.
        expr: for a loop-free native program, its weight as one expression of
            (q, k); None otherwise.
        body: the statements (native: the pair function's body; paper: the
            whole function, building `Matrix`).
        tables: hoisted per-vocabulary tables, indexed by `Lookup.table`.
        notes: why a form is unavailable (e.g. "for loop: no array form").
    """

    name: str
    form: str
    expr: ast.expr | None
    body: list[ast.stmt]
    tables: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def normalize_program(lowered: LoweredProgram) -> NormalizedProgram:
    """Pass 2: both forms -> one IR (see the module docstring).

    Raises:
        UnsupportedError: the program cannot be expressed in the IR at all.
    """
    notes: list[str] = []
    if lowered.form == "native":
        try:
            flat = flatten_body(lowered.body, {}, where=lowered.name)
        except UnsupportedError as exc:
            flat = None
            notes.append(f"no array form: {exc}")
        expr, body = normalize_native(lowered, flat)
        return NormalizedProgram(lowered.name, "native", expr, body, notes=notes)
    body = normalize_paper(lowered)
    notes.append("paper form: loops run in the numba backend")
    return NormalizedProgram(lowered.name, "paper", None, body, notes=notes)
