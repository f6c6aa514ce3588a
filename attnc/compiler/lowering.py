"""Pass 1: checked program -> lowered program (one function, constants and helpers inlined).

The DSL hands over a validated `ast.Module`. Lowering makes it self-contained:
module-level constants are substituted where they are read, calls to
helper functions are replaced by the helper's body turned into one expression
(`flatten_body`), and a signed number literal (`-1`, `-0.5`: a unary minus
over a constant in Python's AST) becomes one constant, so every later pass
sees a single function over its parameters and `x in (-1, 2)` is a literal
set. A helper that cannot become an expression (it loops) is reported as
unsupported and the program runs interpreted.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from attnc.compiler.ir import UnsupportedError
from attnc.compiler.value_types import literal_constant
from attnc.dsl.ast_copy import clone
from attnc.dsl.program import CheckedProgram

#: Flattening a chain of if-statements duplicates the code after them; past this
#: many nodes the program is left to the loop backends / the interpreter.
MAX_FLAT_NODES = 4000


@dataclass
class LoweredProgram:
    """A program as one function body with constants and helpers inlined.

    Attributes:
        name: the program's name (its entry function).
        form: "native" or "paper".
        params: names of the entry function's parameters, in order.
        body: the entry function's statements (docstring removed).
    """

    name: str
    form: str
    params: tuple[str, ...]
    body: list[ast.stmt]


def lower_program(program: CheckedProgram) -> LoweredProgram:
    """Inline module constants and helper functions into the entry point.

    Args:
        program: a validated program.

    Returns:
        The lowered program.

    Raises:
        UnsupportedError: a helper that cannot be inlined, or recursion.
    """
    constants: dict[str, ast.expr] = {}
    helpers: dict[str, ast.FunctionDef] = {}
    for node in program.module.body:
        if isinstance(node, ast.FunctionDef) and node.name != program.entry.name:
            helpers[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    constants[target.id] = node.value
    entry = clone(program.entry)
    params = tuple(a.arg for a in entry.args.args)
    body = _strip_docstring(entry.body)
    inliner = _Inliner(constants, helpers, set(params) | _assigned_names(body))
    body = [inliner.visit(stmt) for stmt in body]
    return LoweredProgram(name=program.name, form=program.form, params=params, body=body)


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return list(body)


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names


class _Inliner(ast.NodeTransformer):
    """Substitutes module constants and inlines helper calls (as expressions)."""

    def __init__(self, constants, helpers, local_names, stack=()):
        self.constants = constants
        self.helpers = helpers
        self.local_names = local_names
        self.stack = stack

    def visit_Name(self, node: ast.Name):
        if isinstance(node.ctx, ast.Load) and node.id not in self.local_names and node.id in self.constants:
            return clone(self.constants[node.id])
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp):
        self.generic_visit(node)
        folded = literal_constant(node) if isinstance(node.op, (ast.USub, ast.UAdd)) else None
        return ast.copy_location(folded, node) if folded is not None else node

    def visit_Call(self, node: ast.Call):
        self.generic_visit(node)
        if not (isinstance(node.func, ast.Name) and node.func.id in self.helpers
                and node.func.id not in self.local_names):
            return node
        helper = self.helpers[node.func.id]
        if helper.name in self.stack:
            raise UnsupportedError(f"helper {helper.name!r} is recursive")
        if node.keywords or len(node.args) > len(helper.args.args):
            raise UnsupportedError(f"call of helper {helper.name!r} with keyword or extra arguments")
        params = [a.arg for a in helper.args.args]
        env: dict[str, ast.expr] = dict(zip(params, node.args))
        defaults = helper.args.defaults
        for name, default in zip(params[len(params) - len(defaults):], defaults):
            env.setdefault(name, default)
        missing = [p for p in params if p not in env]
        if missing:
            raise UnsupportedError(f"call of helper {helper.name!r} misses arguments {missing}")
        body = _strip_docstring(clone(helper.body))
        inner = _Inliner(self.constants, self.helpers, set(params) | _assigned_names(body),
                         self.stack + (helper.name,))
        body = [inner.visit(stmt) for stmt in body]
        return flatten_body(body, env, where=f"helper {helper.name!r}")


def substitute(node: ast.expr, env: dict[str, ast.expr]) -> ast.expr:
    """`node` with every loaded name in `env` replaced by (a copy of) its expression."""

    class _Sub(ast.NodeTransformer):
        def visit_Name(self, n: ast.Name):
            if isinstance(n.ctx, ast.Load) and n.id in env:
                return clone(env[n.id])
            return n

    return _Sub().visit(clone(node))


def flatten_body(body: list[ast.stmt], env: dict[str, ast.expr], where: str) -> ast.expr:
    """Turn straight-line code with if/return into one expression (if-conversion).

    `x = e` binds x to e in what follows; `if c: A else: B; rest` becomes
    `(A; rest) if c else (B; rest)`; `return e` ends a path.

    Raises:
        UnsupportedError: loops, a path without `return`, or code too large.
    """
    result = _flatten(list(body), dict(env), where)
    size = sum(1 for _ in ast.walk(result))
    if size > MAX_FLAT_NODES:
        raise UnsupportedError(f"{where}: if-converted code too large ({size} nodes)")
    return result


def _flatten(stmts: list[ast.stmt], env: dict[str, ast.expr], where: str) -> ast.expr:
    for index, stmt in enumerate(stmts):
        rest = stmts[index + 1:]
        if isinstance(stmt, ast.Return):
            if stmt.value is None:
                raise UnsupportedError(f"{where}: `return` without a value")
            return substitute(stmt.value, env)
        if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
            continue
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if stmt.value is None:
                continue
            value = substitute(stmt.value, env)
            for target in targets:
                _bind(target, value, env, where)
            continue
        if isinstance(stmt, ast.AugAssign):
            if not isinstance(stmt.target, ast.Name):
                raise UnsupportedError(f"{where}: augmented assignment to a non-name")
            current = ast.Name(id=stmt.target.id, ctx=ast.Load())
            env[stmt.target.id] = substitute(ast.BinOp(left=current, op=stmt.op, right=stmt.value), env)
            continue
        if isinstance(stmt, ast.If):
            test = substitute(stmt.test, env)
            then = _flatten(list(stmt.body) + rest, dict(env), where)
            other = _flatten(list(stmt.orelse) + rest, dict(env), where)
            return ast.IfExp(test=test, body=then, orelse=other)
        if isinstance(stmt, ast.For):
            raise UnsupportedError(f"{where}: a `for` loop (runs per (q, k) pair; needs a loop backend)")
        raise UnsupportedError(f"{where}: statement {type(stmt).__name__} in expression form")
    raise UnsupportedError(f"{where}: a path reaches the end without `return`")


def _bind(target: ast.expr, value: ast.expr, env: dict[str, ast.expr], where: str) -> None:
    if isinstance(target, ast.Name):
        env[target.id] = value
        return
    if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) \
            and len(target.elts) == len(value.elts):
        for t, v in zip(target.elts, value.elts):
            _bind(t, v, env, where)
        return
    raise UnsupportedError(f"{where}: assignment to {type(target).__name__} in expression form")
