"""Backend codegen (array form): a native program's expression -> array kernel source.

The kernel evaluates the program for every (q, k) pair of a batch of windows at
once: `q` is a [1, n, 1] and `k` a [1, 1, n] index array, features are gathered
as [B, ., .] arrays, `x if c else y` becomes `where`, `and`/`or` keep Python's
value semantics (`a and b` is `a` where `a` is falsy, else `b`). The same
source runs on NumPy and on torch: it only calls methods of an `ops` object
(attnc/compiler/numpy_backend.py, torch_backend.py).

Errors keep the interpreter's semantics: Python evaluates a branch only where
it is taken, so the kernel tracks which (q, k) pairs are *active* for every
sub-expression (a conjunction of conditions) and raises IndexError /
ZeroDivisionError only when an active pair indexes out of range or divides by
zero. Inactive pairs never raise.

Numeric constants are lifted into the kernel's `C` argument, so programs that
differ only in constants (`0.5 ** d` vs `0.7 ** d`) share one kernel source.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from attnc.compiler.ir import (
    BOOL, FLOAT, INT, STR, Feature, Lookup, Pos, TableSpec, UnsupportedError, WinLen,
)
from attnc.compiler.value_types import (
    NUMPY_ELEMENTWISE, constant_dict_get, infer_type, is_numpy_elementwise, numpy_float_inside,
)

KERNEL_HEADER = "# attnc generated kernel ({flavour}); regenerated from the program source, do not edit.\n"

_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


@dataclass(frozen=True)
class ArrayKernel:
    """Generated source of `kernel(ops, F, L, C, q, k, n)` and the lifted constants."""

    source: str
    constants: tuple


def generate_array_kernel(expr: ast.expr, tables: list[TableSpec]) -> ArrayKernel:
    """Generate the array kernel for a normalized, hoisted native expression.

    Raises:
        UnsupportedError: a construct without an array translation.
    """
    gen = _ArrayGen(tables)
    result = gen.value(expr, ())
    lines = [KERNEL_HEADER.format(flavour="array form: numpy/torch"), "def kernel(ops, F, L, C, q, k, n):"]
    lines += [f"    {line}" for line in gen.lines]
    lines.append(f"    return {result}")
    return ArrayKernel(source="\n".join(lines) + "\n", constants=tuple(gen.constants))


class _ArrayGen:
    def __init__(self, tables: list[TableSpec]):
        self.tables = tables
        self.lines: list[str] = []
        self.constants: list = []
        self.counter = 0
        self.masks: dict[tuple, str] = {}
        self.memo: dict[tuple, tuple] = {}

    def fresh(self, code: str) -> str:
        self.counter += 1
        name = f"t{self.counter}"
        self.lines.append(f"{name} = {code}")
        return name

    def mask(self, conds: tuple) -> str:
        if not conds:
            return "None"
        if conds not in self.masks:
            self.masks[conds] = self.fresh(" & ".join(conds))
        return self.masks[conds]

    def type_of(self, node: ast.expr) -> str:
        return infer_type(node, self.tables)

    def truthy(self, node: ast.expr, conds: tuple) -> str:
        value = self.value(node, conds)
        if self.type_of(node) == BOOL:
            return value
        if self.type_of(node) == STR:
            raise UnsupportedError("truth value of a two-token string expression")
        return self.fresh(f"({value} != 0)")

    def numeric(self, node: ast.expr, conds: tuple) -> str:
        """The value, with bools as ints (Python arithmetic on bools is integer)."""
        value = self.value(node, conds)
        kind = self.type_of(node)
        if kind == BOOL:
            return self.fresh(f"ops.asint({value})")
        if kind == STR:
            raise UnsupportedError("arithmetic on a string of two tokens (e.g. concatenation)")
        return value

    def value(self, node: ast.expr, conds: tuple) -> str:
        key = (id(node), conds)
        if key not in self.memo:
            method = getattr(self, f"v_{type(node).__name__}", None)
            if method is None:
                raise UnsupportedError(f"{type(node).__name__} expression in the array form")
            self.memo[key] = (method(node, conds), node)  # keep node alive: ids stay unique
        return self.memo[key][0]

    # ---- leaves ---------------------------------------------------------------
    def v_Constant(self, node: ast.Constant, conds):
        value = node.value
        if isinstance(value, bool):
            return repr(value)
        if isinstance(value, (int, float)):
            self.constants.append(value)
            return f"C[{len(self.constants) - 1}]"
        raise UnsupportedError(f"constant {value!r} outside a token-string expression")

    def v_Pos(self, node: Pos, conds):
        return node.axis

    def v_WinLen(self, node: WinLen, conds):
        return "n"

    def position(self, index: ast.expr, conds: tuple) -> str:
        kind = self.type_of(index)
        if kind not in (INT, BOOL):
            raise UnsupportedError(f"a position index of type {kind}")
        idx = self.value(index, conds)
        return self.fresh(f"ops.index({idx}, n, {self.mask(conds)})")

    def v_Feature(self, node: Feature, conds):
        return self.fresh(f"ops.gather(F[{node.name!r}], {self.position(node.index, conds)})")

    def v_Lookup(self, node: Lookup, conds):
        token_ids = self.fresh(f"ops.gather(F['ids'], {self.position(node.index, conds)})")
        return self.fresh(f"ops.lookup(L[{node.table}], {token_ids}, {self.mask(conds)})")

    # ---- operators ---------------------------------------------------------------
    def v_UnaryOp(self, node: ast.UnaryOp, conds):
        if isinstance(node.op, ast.Not):
            return self.fresh(f"~{self.truthy(node.operand, conds)}")
        operand = self.numeric(node.operand, conds)
        if isinstance(node.op, ast.USub):
            return self.fresh(f"(-{operand})")
        if isinstance(node.op, ast.UAdd):
            return operand
        return self.fresh(f"(~{operand})")

    def v_BinOp(self, node: ast.BinOp, conds):
        kind = self.type_of(node)  # raises for unsupported combinations
        if kind == STR:
            raise UnsupportedError("string operation on two different tokens (e.g. concatenation in a loop)")
        op = node.op
        if isinstance(op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
            left, right = self.value(node.left, conds), self.value(node.right, conds)
            symbol = {ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}[type(op)]
            if kind != BOOL:
                left, right = f"ops.asint({left})", f"ops.asint({right})"
            return self.fresh(f"({left} {symbol} {right})")
        if isinstance(op, (ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)) and (
                numpy_float_inside(node.right) or isinstance(op, ast.Pow) and numpy_float_inside(node.left)):
            raise UnsupportedError("division or power with an np.exp/np.log value (NumPy float semantics)")
        left, right = self.numeric(node.left, conds), self.numeric(node.right, conds)
        mask = self.mask(conds)
        if isinstance(op, ast.Add):
            return self.fresh(f"({left} + {right})")
        if isinstance(op, ast.Sub):
            return self.fresh(f"({left} - {right})")
        if isinstance(op, ast.Mult):
            return self.fresh(f"({left} * {right})")
        if isinstance(op, ast.Div):
            return self.fresh(f"ops.truediv({left}, {right}, {mask})")
        if isinstance(op, ast.FloorDiv):
            return self.fresh(f"ops.floordiv({left}, {right}, {mask})")
        if isinstance(op, ast.Mod):
            return self.fresh(f"ops.mod({left}, {right}, {mask})")
        if isinstance(op, ast.Pow):
            return self.fresh(f"ops.power({left}, {right}, {mask})")
        raise UnsupportedError(f"operator {type(op).__name__}")

    def v_BoolOp(self, node: ast.BoolOp, conds):
        kind = self.type_of(node)
        if kind == STR:
            raise UnsupportedError("`and`/`or` on strings of two tokens")
        is_and = isinstance(node.op, ast.And)
        # Python: evaluate left to right; stop at the first falsy (and) / truthy (or) value.
        values = node.values
        result = self.value(values[-1], conds + tuple(self._continue_conds(values[:-1], is_and, conds)))
        for i in range(len(values) - 2, -1, -1):
            prefix = conds + tuple(self._continue_conds(values[:i], is_and, conds))
            current = self.value(values[i], prefix)
            test = self.truthy(values[i], prefix)
            stop = test if not is_and else self.fresh(f"~{test}")
            result = self.fresh(f"ops.where({stop}, {self._cast(current, kind)}, "
                                f"{self._cast(result, kind)})")
        return result

    def _table_value(self, value, kind: str) -> str:
        """A dict.get table's value: float values as kernel constants (tunable, like any
        float literal of the program), ints and bools written in place (structure)."""
        if kind != FLOAT:
            return repr(value)
        self.constants.append(float(value))
        return f"C[{len(self.constants) - 1}]"

    def _continue_conds(self, values, is_and: bool, conds: tuple) -> list[str]:
        out: list[str] = []
        for value in values:
            test = self.truthy(value, conds + tuple(out))
            out.append(test if is_and else self.fresh(f"~{test}"))
        return out

    def _cast(self, name: str, kind: str) -> str:
        if kind == FLOAT:
            return f"ops.asfloat({name})"
        if kind == INT:
            return f"ops.asint({name})"
        return name

    def v_IfExp(self, node: ast.IfExp, conds):
        kind = self.type_of(node)
        if kind == STR:
            raise UnsupportedError("a conditional choosing between strings of different tokens")
        test = self.truthy(node.test, conds)
        body = self.value(node.body, conds + (test,))
        other = self.value(node.orelse, conds + (self.fresh(f"~{test}"),))
        return self.fresh(f"ops.where({test}, {self._cast(body, kind)}, {self._cast(other, kind)})")

    def v_Compare(self, node: ast.Compare, conds):
        operands = [node.left] + list(node.comparators)
        pieces: list[str] = []
        local = tuple(conds)
        left = self.value(operands[0], local)
        for i, (op, right_node) in enumerate(zip(node.ops, node.comparators)):
            left_kind = self.type_of(operands[i])
            if isinstance(op, (ast.In, ast.NotIn)):
                piece = self._membership(left, left_kind, right_node, isinstance(op, ast.NotIn))
            else:
                right_kind = self.type_of(right_node)
                if type(op) not in _COMPARE:
                    raise UnsupportedError(f"comparison {type(op).__name__}")
                if STR in (left_kind, right_kind):
                    if left_kind != right_kind or not isinstance(op, (ast.Eq, ast.NotEq)):
                        raise UnsupportedError("ordering or mixed comparison of token strings of two tokens")
                right = self.value(right_node, local)
                piece = self.fresh(f"({left} {_COMPARE[type(op)]} {right})")
                left = right
            pieces.append(piece)
            local = local + (piece,)
        if len(pieces) == 1:
            return pieces[0]
        return self.fresh(" & ".join(pieces))

    def _membership(self, left: str, left_kind: str, container: ast.expr, negate: bool) -> str:
        if not isinstance(container, (ast.Set, ast.List, ast.Tuple)):
            raise UnsupportedError("`in` on something other than a literal set/list/tuple")
        items = []
        for element in container.elts:
            if not isinstance(element, ast.Constant) or isinstance(element.value, str) or element.value is None:
                raise UnsupportedError("`in` with non-numeric items and a value of two tokens")
            items.append(repr(element.value))
        if left_kind == STR:
            raise UnsupportedError("`in` on a two-token string")
        code = f"ops.isin({left}, ({', '.join(items)},))"
        return self.fresh(f"~{code}" if negate else code)

    def v_Call(self, node: ast.Call, conds):
        kind = self.type_of(node)
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in ("min", "max"):
            args = [self.numeric(a, conds) for a in node.args]
            fn = "ops.minimum" if name == "min" else "ops.maximum"
            result = args[0]
            for arg in args[1:]:
                result = self.fresh(f"{fn}({result}, {arg})")
            return self._cast(result, kind) if kind != BOOL else result
        if name == "abs":
            return self.fresh(f"ops.absolute({self.numeric(node.args[0], conds)})")
        if name == "float":
            return self.fresh(f"ops.asfloat({self.value(node.args[0], conds)})")
        if name == "int":
            if numpy_float_inside(node.args[0]):  # int(nan) / int(inf) raise in Python
                raise UnsupportedError("int() of an np.exp/np.log value (NumPy float semantics)")
            return self.fresh(f"ops.trunc_int({self.value(node.args[0], conds)})")
        if name == "bool":
            return self.truthy(node.args[0], conds)
        if constant_dict_get(node) is not None:  # a chain of selects, one per key
            table, default = constant_dict_get(node)
            key = self.numeric(node.args[0], conds)
            cast = "ops.asfloat" if kind == FLOAT else ""
            result = f"{cast}({self._table_value(default, kind)})"
            for k, v in reversed(list(table.items())):
                result = self.fresh(f"ops.where({key} == {k!r}, {cast}({self._table_value(v, kind)}), {result})")
            return result
        if is_numpy_elementwise(node):
            assert node.func.attr in NUMPY_ELEMENTWISE
            return self.fresh(f"ops.{node.func.attr}({self.numeric(node.args[0], conds)})")
        raise UnsupportedError(f"call of {ast.unparse(node.func)}() in the array form")
