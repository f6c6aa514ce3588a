"""Validated AST -> the module the reference interpreter executes.

A copy of the validated module is rewritten so that every attribute access,
subscript, item assignment, binary operator, comparison and loop goes
through a guard in `sandbox.py`, and annotations are dropped (they are
declarations, never evaluated). Guard names start with `__attnc_`; programs
can never write a name starting with `__`, so they cannot reach them.
"""

from __future__ import annotations

import ast
import itertools

from attnc.dsl.ast_copy import clone
from attnc.dsl.sandbox import GUARD_PREFIX

_BINOP_NAMES = {
    ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.FloorDiv: "floordiv",
    ast.Mod: "mod", ast.Pow: "pow", ast.BitOr: "or", ast.BitXor: "xor", ast.BitAnd: "and",
}
_COMPARE_NAMES = {
    ast.Lt: "lt", ast.Gt: "gt", ast.LtE: "le", ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne",
    ast.In: "in", ast.NotIn: "notin", ast.Is: "is", ast.IsNot: "isnot",
}


def _guard(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(func=ast.Name(id=GUARD_PREFIX + name, ctx=ast.Load()), args=list(args), keywords=[])


class _Instrumenter(ast.NodeTransformer):
    def __init__(self):
        self.temporaries = itertools.count()

    def _temp(self) -> str:
        return f"{GUARD_PREFIX}t{next(self.temporaries)}"

    # -- declarations are not evaluated; calls are tracked -------------------------
    def visit_FunctionDef(self, node: ast.FunctionDef):
        """Annotations dropped; the body runs between enter/leave guards that refuse
        re-entering an active function (recursion, however the function was reached)."""
        for arg in node.args.args:
            arg.annotation = None
        node.returns = None
        self.generic_visit(node)
        key = ast.Constant(f"{node.name}:{getattr(node, 'lineno', 0)}")
        guarded = ast.Try(body=node.body, handlers=[], orelse=[],
                          finalbody=[ast.Expr(_guard("leave", key))])
        node.body = [ast.Expr(_guard("enter", key)), guarded]
        return node

    def visit_Try(self, node: ast.Try):
        """Each handler first re-raises a guard's stop (guards also derive from no
        class a program can name; this is the second line)."""
        self.generic_visit(node)
        for handler in node.handlers:
            if handler.name is None:
                handler.name = self._temp()
            handler.body = [ast.Expr(_guard("reraise", ast.Name(id=handler.name, ctx=ast.Load())))] + handler.body
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign):
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        assign = ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)
        return self.visit(assign)

    # -- loops are counted ---------------------------------------------------------
    def visit_For(self, node: ast.For):
        self.generic_visit(node)
        node.iter = ast.copy_location(_guard("iter", node.iter), node.iter)
        return node

    def visit_While(self, node: ast.While):
        self.generic_visit(node)
        node.test = ast.copy_location(_guard("loop", node.test), node.test)
        return node

    def visit_comprehension(self, node: ast.comprehension):
        self.generic_visit(node)
        node.iter = ast.copy_location(_guard("iter", node.iter), node.iter)
        return node

    # -- attribute access, items -------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute):
        self.generic_visit(node)
        return ast.copy_location(_guard("attr", node.value, ast.Constant(node.attr)), node)

    def _index(self, index: ast.expr) -> ast.expr:
        if isinstance(index, ast.Slice):
            parts = [part if part is not None else ast.Constant(None) for part in (index.lower, index.upper, index.step)]
            return ast.copy_location(_guard("slice", *parts), index)
        if isinstance(index, ast.Tuple):
            index.elts = [self._index(e) for e in index.elts]
        return index

    def visit_Subscript(self, node: ast.Subscript):
        self.generic_visit(node)
        return ast.copy_location(_guard("getitem", node.value, self._index(node.slice)), node)

    def visit_Assign(self, node: ast.Assign):
        target = node.targets[0]
        if len(node.targets) == 1 and isinstance(target, ast.Subscript):
            value = self.visit(node.value)
            obj = self.visit(target.value)
            index = self._index(self.visit(target.slice))
            return ast.copy_location(ast.Expr(_guard("setitem", obj, index, value)), node)
        self.generic_visit(node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign):
        op = ast.Constant(_BINOP_NAMES[type(node.op)])
        value = self.visit(node.value)
        target = node.target
        if isinstance(target, ast.Name):
            load = ast.Name(id=target.id, ctx=ast.Load())
            return ast.copy_location(ast.Assign(targets=[target], value=_guard("inplace", op, load, value)), node)
        obj_name, index_name = self._temp(), self._temp()
        obj = ast.NamedExpr(target=ast.Name(id=obj_name, ctx=ast.Store()), value=self.visit(target.value))
        index = ast.NamedExpr(target=ast.Name(id=index_name, ctx=ast.Store()),
                              value=self._index(self.visit(target.slice)))
        current = _guard("getitem", ast.Name(id=obj_name, ctx=ast.Load()), ast.Name(id=index_name, ctx=ast.Load()))
        return ast.copy_location(ast.Expr(_guard("setitem", obj, index, _guard("inplace", op, current, value))), node)

    # -- operators -----------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp):
        self.generic_visit(node)
        return ast.copy_location(_guard("binop", ast.Constant(_BINOP_NAMES[type(node.op)]), node.left, node.right), node)

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        if len(node.ops) == 1:
            return ast.copy_location(
                _guard("compare", ast.Constant(_COMPARE_NAMES[type(node.ops[0])]), node.left, node.comparators[0]), node)
        # a < b < c  ->  compare(a, (t := b)) and compare(t, c): each operand evaluated once.
        left, parts = node.left, []
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            if i < len(node.ops) - 1:
                name = self._temp()
                right_expr = ast.NamedExpr(target=ast.Name(id=name, ctx=ast.Store()), value=right)
                parts.append(_guard("compare", ast.Constant(_COMPARE_NAMES[type(op)]), left, right_expr))
                left = ast.Name(id=name, ctx=ast.Load())
            else:
                parts.append(_guard("compare", ast.Constant(_COMPARE_NAMES[type(op)]), left, right))
        return ast.copy_location(ast.BoolOp(op=ast.And(), values=parts), node)


def instrument(module: ast.Module) -> ast.Module:
    """Return a guarded copy of a validated module (the input is not modified)."""
    guarded = _Instrumenter().visit(clone(module))
    return ast.fix_missing_locations(guarded)
