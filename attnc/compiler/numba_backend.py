"""Numba backend: loop-shaped programs -> `@njit(cache=True)` kernels over int arrays.

Paper-form programs (loops over i, j that fill `out[i, j]`) and native programs
with `for` loops are translated statement by statement into a Python function
that numba compiles. By the time code reaches here every token string has been
hoisted into a per-vocabulary table (hoisting.py), so the kernel reads only
integer/float/bool arrays:

    program(n, ids, F_<feature>..., L<t>, E<t>..., C) -> out      (paper form)
    pair(q, k, n, ids, F_<feature>..., L<t>, E<t>..., C) -> float (native form)
    (only the features the program reads are passed)
    kernel(ids[B, n], features..., tables..., C, causal, rule, out[B, n, n], zeroed) -> 0 | 1
                                                                   (batch loop)

`kernel` writes raw matrices, or with `rule` the output rule applied per
window (`_rule_matrix` from output_kernel.py). The helpers kernels call live in
loop_runtime.py, one import line per kernel, so they are JIT-compiled once per
process rather than once per kernel. A paper-form program
whose only writes are single elements outside nested loops (`_tracked_matrix`:
pointer heads such as "attend to the start of the line") has `_mark` record each
row's written span, and the rule reads only the spans: the matrix is built in a
fresh zero `out` itself, or in a scratch buffer that the rule zeroes again span
by span, so a window costs one write pass of its output instead of zeroing,
reading and writing n x n entries.

`L<t>` is table t's values and `E<t>` its error flags (where the hoisted
expression raised for that vocabulary entry). Indexing is bounds-checked
(`boundscheck=True`), negative indices wrap like Python lists, and scalar
division by zero raises ZeroDivisionError (numba's Python error model), so
errors match the interpreter's. Numeric constants are kernel arguments (`C`),
so structurally identical programs share one kernel file and one JIT.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import numpy as np

from attnc.compiler.hoisting import BuiltTable
from attnc.compiler.ir import BOOL, FEATURE_TYPES, Feature, Lookup, Matrix, Pos, TokStr, UnsupportedError, WinLen
from attnc.compiler.normalizing import NormalizedProgram
from attnc.compiler.loop_runtime import RUNTIME_IMPORT, RUNTIME_VERSION
from attnc.compiler.value_types import constant_dict_get, is_numpy_elementwise

_FEATURES = tuple(name for name in FEATURE_TYPES if name != "ids")



@dataclass(frozen=True)
class LoopKernel:
    """Generated numba source and the lifted constants."""

    source: str
    constants: tuple


def generate_loop_kernel(program: NormalizedProgram) -> LoopKernel:
    """Translate a normalized, hoisted program into numba kernel source.

    Raises:
        UnsupportedError: a statement or expression without a numba translation.
    """
    tracked = _tracked_matrix(program.body) if program.form == "paper" else None
    gen = _LoopGen(program, tracked)
    body = gen.block(program.body, 1)
    if tracked is not None and gen.final_add is None:  # the ending was not the fused one after all
        gen = _LoopGen(program, None)
        body = gen.block(program.body, 1)
    present = {node.name for stmt in program.body for node in ast.walk(stmt) if isinstance(node, Feature)}
    used = [name for name in _FEATURES if name in present]
    table_args = "".join(f", L{t}, E{t}" for t in range(len(program.tables)))
    feature_args = "".join(f", F_{name}" for name in _FEATURES)
    used_args = "".join(f", F_{name}" for name in used)
    args = f"n, ids{used_args}{table_args}, C"
    # One window's rows are sliced once per window, not per call: every array
    # argument of a call costs reference counting.
    slices = ["        ids_b = ids[b]"] + [f"        F_{name}_b = F_{name}[b]" for name in used]
    call_args = f"n, ids_b{''.join(f', F_{name}_b' for name in used)}{table_args}, C"
    lines: list[str] = ["@njit(**_JIT)"]
    setup: list[str] = []
    # With `rule` the output rule is applied per window while its matrix is in
    # cache (no separate passes over [B, n, n]); the kernel returns 1 at the
    # first window with a NaN/inf raw value, and the caller names it.
    if program.form == "paper" and gen.tracked is not None:
        # Every write to the matrix is one element, with the written span of each
        # row recorded in lo/hi: the rule reads only the spans. The matrix is
        # out[b] itself when out is a fresh np.zeros, else `scratch`, which the
        # rule zeroes again span by span for the next window.
        final = gen.final_add
        lines.append(f"def program({args}, buf, zeroed, lo, hi):")
        setup = ["    scratch = np.zeros((0, 0) if zeroed else (n, n))",
                 "    lo = np.full(n, n, np.int64)", "    hi = np.zeros(n, np.int64)"]
        inner = slices + ["        if not rule:",
                          f"            m = program({call_args}, out[b], zeroed, lo, hi)",
                          f"            out[b] = _add_row_normalize_inplace(m, {final})",
                          "        elif zeroed:  # out[b] is zeros: the program builds its matrix there",
                          f"            m = program({call_args}, out[b], True, lo, hi)",
                          f"            if _add_normalize_rule_tracked(m, lo, hi, {final}, causal, out[b], True) != 0:",
                          "                return 1",
                          "        else:",
                          f"            m = program({call_args}, scratch, True, lo, hi)",
                          f"            if _add_normalize_rule_tracked(m, lo, hi, {final}, causal, out[b], False) != 0:",
                          "                return 1"]
    elif program.form == "paper":
        # The first output matrix is the window's slice of `out` (`buf`): no n x n
        # allocation per window, and the rule runs in place. A final
        # `m += c; m = m / m.sum(axis=1, keepdims=True)` is fused with the rule.
        lines.append(f"def program({args}, buf, zeroed):")
        final = gen.final_add
        inner = slices + [f"        m = program({call_args}, out[b], zeroed)",
                          "        if not rule:",
                          "            out[b] = m" if final is None else f"            out[b] = _add_row_normalize_inplace(m, {final})",
                          "        elif _rule_matrix(m, causal, out[b]) != 0:" if final is None
                          else f"        elif _add_normalize_rule_matrix(m, {final}, causal, out[b]) != 0:",
                          "            return 1"]
    else:
        lines[0] = "@njit(**_INLINE)"
        lines.append(f"def pair(q, k, {args}):")
        inner = slices + ["        for q in range(n):", "            for k in range(n):",
                          f"                out[b, q, k] = pair(q, k, {call_args})",
                          "        if rule and _rule_matrix(out[b], causal, out[b]) != 0:",
                          "            return 1"]
    lines += body
    header = "# attnc generated kernel (loop form: numba); regenerated from the program source, do not edit.\n"
    kernel = [
        "@njit(**_JIT)",
        f"def kernel(ids{feature_args}{table_args}, C, causal, rule, out, zeroed):",
        "    n = ids.shape[1]",
        *setup,
        "    for b in range(ids.shape[0]):",
        *inner,
        "    return 0",
    ]
    prelude = f"# runtime {RUNTIME_VERSION}\n{RUNTIME_IMPORT}\n"
    source = header + prelude + "\n\n" + "\n".join(lines) + "\n\n\n" + "\n".join(kernel) + "\n"
    return LoopKernel(source=source, constants=tuple(gen.constants))


class _LoopGen:
    def __init__(self, program: NormalizedProgram, tracked: str | None = None):
        self.program = program
        # the paper-form matrix whose element writes are recorded (`_mark`), see `_tracked_matrix`
        self.tracked = tracked
        self.constants: list = []
        self.native = program.form == "native"
        self.matrices: set[str] = set()
        # `m = m / m.sum(axis=1, keepdims=True)` may overwrite m's array only
        # when no other name can see that array (a fresh array saves an n*n
        # allocation and its page faults per window).
        self.normalize_in_place = not _matrix_may_alias(program.body)
        self.depth = 0
        # paper form: the first top-level output matrix is allocated in the kernel's `buf`
        self.buffer_free = program.form == "paper"
        # `c` of a final `m += c; m = m / m.sum(...); return m` left to the kernel (fused with the rule)
        self.final_add: str | None = None
        self._returns = sum(isinstance(node, ast.Return) for stmt in program.body for node in ast.walk(stmt))
        # np.exp/np.log give NumPy floats: dividing by one (or int() of one) gives inf/NaN where
        # numba's Python floats raise, so they are compiled only in programs without such spots.
        self.numpy_floats_ok = not _divides(program.body)
        self.loop_ints = _loop_ints(program.body)

    # ---- statements ------------------------------------------------------------------
    def block(self, stmts: list[ast.stmt], depth: int) -> list[str]:
        lines: list[str] = []
        skip = False
        for stmt, following in zip(stmts, stmts[1:] + [None]):
            if skip:
                skip = False
                continue
            fused = self.add_then_normalize(stmt, following)
            if fused is not None:
                name, constant = fused
                if self.is_final(depth, name, stmts, stmt):
                    self.final_add = constant  # the kernel applies it, fused with the output rule
                else:
                    lines.append("    " * depth + f"{name} = _add_row_normalize_inplace({name}, {constant})")
                skip = True
                continue
            lines += self.stmt(stmt, depth)
        return lines or ["    " * depth + "pass"]

    def is_final(self, depth: int, name: str, stmts: list[ast.stmt], first: ast.stmt) -> bool:
        """Whether `first` (an add-then-normalize of `name`) is followed only by the program's one `return name`."""
        if self.native or depth != 1 or self._returns != 1 or self.final_add is not None:
            return False
        at = next(i for i, s in enumerate(stmts) if s is first)
        rest = stmts[at + 2:]
        return len(rest) == 1 and isinstance(rest[0], ast.Return) and isinstance(rest[0].value, ast.Name) \
            and rest[0].value.id == name

    def add_then_normalize(self, first: ast.stmt, second: ast.stmt | None) -> tuple[str, str] | None:
        """`m += c` then an in-place `m = m / m.sum(axis=1, keepdims=True)`: one pass over m, same numbers.

        Returns (m, the code of c), or None when the two statements are not that pattern.
        """
        if not (isinstance(first, ast.AugAssign) and isinstance(first.op, ast.Add)
                and isinstance(first.target, ast.Name) and first.target.id in self.matrices):
            return None
        name, value = first.target.id, first.value
        if isinstance(value, ast.UnaryOp) and isinstance(value.op, (ast.USub, ast.UAdd)):
            value = value.operand
        if not (isinstance(value, ast.Constant) and type(value.value) in (int, float)):
            return None  # only a number: an array would broadcast
        if isinstance(second, ast.AugAssign) and isinstance(second.op, ast.Div) \
                and isinstance(second.target, ast.Name) and second.target.id == name:
            ok = _is_row_sums(second.value, name)
        elif isinstance(second, ast.Assign) and len(second.targets) == 1 and self.normalize_in_place:
            target, value = second.targets[0], second.value
            ok = isinstance(target, ast.Name) and target.id == name and isinstance(value, ast.BinOp) \
                and isinstance(value.op, ast.Div) and isinstance(value.left, ast.Name) \
                and value.left.id == name and _is_row_sums(value.right, name)
        else:
            ok = False
        return (name, self.expr(first.value)) if ok else None

    def stmt(self, node: ast.stmt, depth: int) -> list[str]:
        pad = "    " * depth
        self.depth = depth
        if isinstance(node, ast.Pass):
            return [pad + "pass"]
        if isinstance(node, ast.Break):
            return [pad + "break"]
        if isinstance(node, ast.Continue):
            return [pad + "continue"]
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant):
                return []
            raise UnsupportedError("an expression statement (a call for its effect)")
        if isinstance(node, ast.Return):
            if node.value is None:
                raise UnsupportedError("`return` without a value")
            if self.native:
                return [pad + f"return float({self.expr(node.value)})"]
            if not (isinstance(node.value, ast.Name) and node.value.id in self.matrices):
                raise UnsupportedError("the paper form must return the output matrix")
            return [pad + f"return {node.value.id}"]
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is None:
                return []
            if len(targets) != 1:
                raise UnsupportedError("chained assignment")
            return [pad + f"{self.target(targets[0], node.value)} = {self.value(node.value, targets[0])}",
                    *self.mark(targets[0], pad)]
        if isinstance(node, ast.AugAssign):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise UnsupportedError(f"augmented operator {type(node.op).__name__}")
            target = node.target
            if isinstance(target, ast.Name) and target.id in self.matrices and isinstance(node.op, ast.Div) \
                    and _is_row_sums(node.value, target.id):
                # `m /= ...` is in place in NumPy too: aliases see the change either way.
                return [pad + f"{target.id} = _row_normalize_inplace({target.id})"]
            return [pad + f"{self.target(target, None)} {op}= {self.expr(node.value)}", *self.mark(target, pad)]
        if isinstance(node, ast.If):
            lines = [pad + f"if {self.expr(node.test)}:"] + self.block(node.body, depth + 1)
            if node.orelse:
                lines += [pad + "else:"] + self.block(node.orelse, depth + 1)
            return lines
        if isinstance(node, ast.For):
            if node.orelse:
                raise UnsupportedError("`for ... else`")
            if not isinstance(node.target, ast.Name):
                raise UnsupportedError("a loop target other than one name (use range over positions)")
            return [pad + f"for {node.target.id} in {self.loop_range(node.iter)}:"] + self.block(node.body, depth + 1)
        raise UnsupportedError(f"statement {type(node).__name__}")

    def mark(self, target: ast.expr, pad: str) -> list[str]:
        """`_mark(lo, hi, row, col)` after a write to an element of the tracked matrix, else nothing."""
        if self.tracked is None or not isinstance(target, ast.Subscript):
            return []
        base = target.value
        if isinstance(base, ast.Name) and base.id == self.tracked and isinstance(target.slice, ast.Tuple):
            row, col = target.slice.elts
        elif isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) and base.value.id == self.tracked:
            row, col = base.slice, target.slice
        else:
            return []
        return [pad + f"_mark(lo, hi, {self.expr(row)}, {self.expr(col)})"]

    def loop_range(self, it: ast.expr) -> str:
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and not it.keywords:
            if it.func.id == "range" and 1 <= len(it.args) <= 3:
                return f"range({', '.join(self.expr(a) for a in it.args)})"
            if it.func.id == "reversed" and len(it.args) == 1:
                inner = it.args[0]
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id == "range" \
                        and 1 <= len(inner.args) <= 2 and not inner.keywords:
                    start, stop = ("0", self.expr(inner.args[0])) if len(inner.args) == 1 \
                        else (self.expr(inner.args[0]), self.expr(inner.args[1]))
                    return f"range(({stop}) - 1, ({start}) - 1, -1)"
        raise UnsupportedError(f"a loop over {ast.unparse(it) if not _has_ir(it) else 'a window value'} "
                               "(only range/reversed(range) over positions)")

    def target(self, node: ast.expr, value: ast.expr | None) -> str:
        if isinstance(node, ast.Name):
            if isinstance(value, Matrix):
                self.matrices.add(node.id)
            return node.id
        if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Name) for e in node.elts):
            return ", ".join(e.id for e in node.elts)
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) and base.value.id in self.matrices:
                return f"{base.value.id}[{self.expr(base.slice)}, {self.expr(node.slice)}]"
            if isinstance(base, ast.Name):
                return f"{base.id}[{self.index(node.slice)}]"
        raise UnsupportedError(f"assignment to {type(node).__name__}")

    def value(self, node: ast.expr, target: ast.expr) -> str:
        if isinstance(node, Matrix):
            if self.buffer_free and self.depth == 1:  # runs once per window: the window's slice of out
                self.buffer_free = False
                return f"_fill_into(buf, {float(node.fill)!r}, zeroed)"
            return f"np.{'zeros' if node.fill == 0.0 else 'ones'}((n, n))"
        if isinstance(target, ast.Name) and target.id in self.matrices and isinstance(node, ast.BinOp) \
                and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Name) \
                and node.left.id == target.id and _is_row_sums(node.right, target.id):
            return f"_row_normalize{'_inplace' if self.normalize_in_place else ''}({target.id})"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult) and isinstance(node.left, ast.List) \
                and len(node.left.elts) == 1 and isinstance(node.left.elts[0], ast.Constant):
            fill = node.left.elts[0].value
            if isinstance(fill, (bool, int, float)):
                return f"np.full({self.expr(node.right)}, {fill!r})"
        return self.expr(node)

    def index(self, node: ast.expr) -> str:
        if isinstance(node, ast.Tuple):
            return ", ".join(self.expr(e) for e in node.elts)
        if isinstance(node, ast.Slice):
            raise UnsupportedError("slicing")
        return self.expr(node)

    # ---- expressions --------------------------------------------------------------
    def expr(self, node: ast.expr) -> str:
        if isinstance(node, Pos):
            if not self.native:
                raise UnsupportedError("a query/key position outside the native form")
            return node.axis
        if isinstance(node, WinLen):
            return "n"
        if isinstance(node, Feature):
            array = "ids" if node.name == "ids" else f"F_{node.name}"
            return f"{array}[{self.expr(node.index)}]"
        if isinstance(node, Lookup):
            return f"_lookup(L{node.table}, E{node.table}, ids[{self.expr(node.index)}])"
        if isinstance(node, TokStr):
            raise UnsupportedError("a token string that could not be turned into a table")
        if isinstance(node, Matrix):
            raise UnsupportedError("an output matrix inside an expression")
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or value is None:
                return repr(value)
            if isinstance(value, (int, float)):
                self.constants.append(value)
                return f"C[{len(self.constants) - 1}]"
            raise UnsupportedError(f"constant {value!r} in loop code (strings must be hoisted)")
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise UnsupportedError(f"operator {type(node.op).__name__}")
            return f"({self.expr(node.left)} {op} {self.expr(node.right)})"
        if isinstance(node, ast.UnaryOp):
            op = {ast.Not: "not ", ast.USub: "-", ast.UAdd: "+", ast.Invert: "~"}[type(node.op)]
            return f"({op}{self.expr(node.operand)})"
        if isinstance(node, ast.BoolOp):
            op = " and " if isinstance(node.op, ast.And) else " or "
            return "(" + op.join(self.expr(v) for v in node.values) + ")"
        if isinstance(node, ast.IfExp):
            return f"({self.expr(node.body)} if {self.expr(node.test)} else {self.expr(node.orelse)})"
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Subscript):
            base = node.value
            if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Name) and base.value.id in self.matrices:
                return f"{base.value.id}[{self.expr(base.slice)}, {self.expr(node.slice)}]"
            if isinstance(base, ast.Name):
                return f"{base.id}[{self.index(node.slice)}]"
            raise UnsupportedError("indexing something other than a local array")
        if isinstance(node, ast.Call):
            return self.call(node)
        raise UnsupportedError(f"{type(node).__name__} expression in loop code")

    def compare(self, node: ast.Compare) -> str:
        parts = []
        left = self.expr(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right_node, (ast.Set, ast.List, ast.Tuple)) or not all(
                        isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in right_node.elts):
                    raise UnsupportedError("`in` on something other than a literal set of numbers")
                test = " or ".join(f"{left} == {e.value!r}" for e in right_node.elts) or "False"
                parts.append(f"(not ({test}))" if isinstance(op, ast.NotIn) else f"({test})")
                continue
            symbol = _CMPOPS.get(type(op))
            if symbol is None:
                raise UnsupportedError(f"comparison {type(op).__name__}")
            right = self.expr(right_node)
            parts.append(f"({left} {symbol} {right})")
            left = right
        return "(" + " and ".join(parts) + ")"

    def call(self, node: ast.Call) -> str:
        if node.keywords:
            raise UnsupportedError("keyword arguments in loop code")
        func = node.func
        if constant_dict_get(node) is not None:
            table, default = constant_dict_get(node)
            kinds = {type(v) for v in [*table.values(), default]}
            if len(kinds) != 1 or kinds - {int, float, bool} or any(type(k) not in (int, float, bool) or k != k
                                                                      for k in table):
                raise UnsupportedError("dict.get() in loop code other than numbers -> one type of number")
            key = self.expr(node.args[0])
            result = repr(default)
            for k, v in reversed(list(table.items())):  # `key` is pure: evaluated once per test
                result = f"({v!r} if {key} == {k!r} else {result})"
            return result
        if is_numpy_elementwise(node) and len(node.args) == 1:
            if not _surely_number(node.args[0], self.loop_ints):
                raise UnsupportedError(f"np.{func.attr}() of a value that may be a bool (a float16 in NumPy); "
                                       "write e.g. np.exp(1.0 * x)")
            if not self.numpy_floats_ok:
                raise UnsupportedError(f"np.{func.attr}() in a program that divides, takes powers or int() "
                                       "(NumPy float semantics)")
            return f"np.{func.attr}(float({self.expr(node.args[0])}))"
        if isinstance(func, ast.Name) and func.id in ("min", "max", "abs", "int", "float", "bool", "len"):
            return f"{func.id}({', '.join(self.expr(a) for a in node.args)})"
        if isinstance(func, ast.Attribute) and func.attr == "sum" and not node.args:
            target = func.value
            if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                    and target.value.id in self.matrices:
                return f"{target.value.id}[{self.expr(target.slice)}].sum()"
            if isinstance(target, ast.Name) and target.id in self.matrices:
                return f"{target.id}.sum()"
        raise UnsupportedError(f"call of {ast.unparse(func) if not _has_ir(func) else 'a window value'}() in loop code")


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
           ast.Pow: "**", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _loop_ints(body: list[ast.stmt]) -> frozenset[str]:
    """Names bound only as `for NAME in range(...)` targets: Python ints."""
    loops, other = set(), set()
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Call) \
                    and isinstance(node.iter.func, ast.Name) and node.iter.func.id in ("range", "reversed"):
                loops.add(node.target.id)
            elif isinstance(node, ast.For):
                other.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:  # names bound (not those indexing a subscript target)
                    names = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
                    other.update(n.id for n in names if isinstance(n, ast.Name))
    return frozenset(loops - other)


def _surely_number(node: ast.expr, ints: frozenset[str] = frozenset()) -> bool:
    """An int or float for sure, never a (NumPy) bool: a number literal, the window length, a
    range() loop variable, float(), np.exp/np.log, arithmetic with one of these or true division,
    or the negation of one of these."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float)
    if isinstance(node, WinLen):
        return True
    if isinstance(node, ast.Name):
        return node.id in ints
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _surely_number(node.operand, ints)
    if isinstance(node, ast.Call):
        return is_numpy_elementwise(node) or (isinstance(node.func, ast.Name) and node.func.id == "float")
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        return isinstance(node.op, ast.Div) or _surely_number(node.left, ints) or _surely_number(node.right, ints)
    return False


def _divides(body: list[ast.stmt]) -> bool:
    """Whether the program divides, takes a modulo or a power, or calls int(), apart from
    row normalisations `m / m.sum(axis=1, keepdims=True)` (NumPy semantics in the kernel too)."""
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)):
                if not (isinstance(node.op, ast.Div) and isinstance(node.left, ast.Name)
                        and _is_row_sums(node.right, node.left.id)):
                    return True
            if isinstance(node, ast.AugAssign) and isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)):
                if not (isinstance(node.op, ast.Div) and isinstance(node.target, ast.Name)
                        and _is_row_sums(node.value, node.target.id)):
                    return True
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "int":
                return True
    return False


def _has_ir(node: ast.AST) -> bool:
    return any(isinstance(n, (Pos, WinLen, Feature, Lookup, TokStr, Matrix)) for n in ast.walk(node))


def _tracked_matrix(body: list[ast.stmt]) -> str | None:
    """The paper-form matrix whose writes are all single elements, or None.

    That is the program's only matrix, made by a top-level `m = np.zeros((n, n))`;
    the program ends `m += c; m = m / m.sum(axis=1, keepdims=True); return m`
    (checked again after generation: the kernel must have fused that ending);
    before the ending, `m` appears only in element reads and writes or sums
    (`_is_scalar_use`: no row views, aliases, whole-matrix operations or calls),
    and no write is inside two nested loops (O(n) writes: the rows stay mostly zero).
    The kernel can then keep it in a buffer that stays zero between windows and
    record each row's written span (`_mark`), so that the rule reads only the
    spans (output_kernel._add_normalize_rule_tracked).
    """
    made = [node for stmt in body for node in ast.walk(stmt) if isinstance(node, Matrix)]
    if len(made) != 1 or len(body) < 4:
        return None
    first = next((stmt for stmt in body if isinstance(stmt, ast.Assign) and stmt.value is made[0]), None)
    if first is None or made[0].fill != 0.0 or len(first.targets) != 1 or not isinstance(first.targets[0], ast.Name):
        return None
    name = first.targets[0].id
    ending = body[-1]
    if not (isinstance(ending, ast.Return) and isinstance(ending.value, ast.Name) and ending.value.id == name):
        return None
    for stmt in body[:-3]:
        parents = {child: parent for parent in ast.walk(stmt) for child in ast.iter_child_nodes(parent)}
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id == name and node is not first.targets[0] \
                    and not _is_scalar_use(node, parents):
                return None
    if _max_write_loop_depth(body[:-3], name, 0) > 1:
        return None  # writes in nested loops fill rows densely: the plain fused rule is faster then
    return name


def _max_write_loop_depth(stmts: list[ast.stmt], name: str, depth: int) -> int:
    """How many `for` loops enclose the deepest element write to matrix `name`."""
    deepest = -1
    for stmt in stmts:
        if isinstance(stmt, (ast.Assign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if any(isinstance(n, ast.Name) and n.id == name for t in targets for n in ast.walk(t)):
                deepest = max(deepest, depth)
        inner = depth + isinstance(stmt, ast.For)
        for block in (getattr(stmt, "body", None), getattr(stmt, "orelse", None)):
            if isinstance(block, list):
                deepest = max(deepest, _max_write_loop_depth(block, name, inner))
    return deepest


def _matrix_may_alias(body: list[ast.stmt]) -> bool:
    """Whether an assignment might bind a second name to an output matrix (or a row view of one).

    Conservative: any read of a matrix name inside an assigned value counts,
    except element reads (`m[i, j]`, `m[i][j]`), sums (`m.sum()`,
    `m[i].sum()`) and the row normalisation `m = m / m.sum(axis=1, keepdims=True)`.
    """
    statements = [node for stmt in body for node in ast.walk(stmt)]
    names = {target.id for node in statements if isinstance(node, (ast.Assign, ast.AnnAssign))
             and isinstance(node.value, Matrix)
             for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
             if isinstance(target, ast.Name)}
    for node in statements:
        if not isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) or node.value is None \
                or isinstance(node.value, Matrix):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        value = node.value
        if len(targets) == 1 and isinstance(targets[0], ast.Name) and isinstance(value, ast.BinOp) \
                and isinstance(value.op, ast.Div) and isinstance(value.left, ast.Name) \
                and value.left.id == targets[0].id and _is_row_sums(value.right, targets[0].id):
            continue
        parents = {child: parent for parent in ast.walk(value) for child in ast.iter_child_nodes(parent)}
        for name in ast.walk(value):
            if isinstance(name, ast.Name) and name.id in names and not _is_scalar_use(name, parents):
                return True
    return False


def _is_scalar_use(name: ast.Name, parents: dict) -> bool:
    """`m[i, j]`, `m[i][j]`, `m.sum()` or `m[i].sum()`: a number, never an alias of `m`."""
    parent = parents.get(name)
    if isinstance(parent, ast.Attribute) and parent.attr == "sum":
        return True
    if not (isinstance(parent, ast.Subscript) and parent.value is name):
        return False
    if isinstance(parent.slice, ast.Tuple):
        return True
    grand = parents.get(parent)
    return (isinstance(grand, ast.Subscript) and grand.value is parent) or (
        isinstance(grand, ast.Attribute) and grand.attr == "sum")


def _is_row_sums(node: ast.expr, name: str) -> bool:
    """`name.sum(axis=1, keepdims=True)` (also `axis=-1`)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "sum"
            and isinstance(node.func.value, ast.Name) and node.func.value.id == name and not node.args):
        return False
    keywords = {kw.arg: kw.value for kw in node.keywords}
    axis, keep = keywords.get("axis"), keywords.get("keepdims")
    axis_ok = isinstance(axis, ast.Constant) and axis.value in (1, -1) or (
        isinstance(axis, ast.UnaryOp) and isinstance(axis.op, ast.USub) and isinstance(axis.operand, ast.Constant)
        and axis.operand.value == 1)
    return axis_ok and isinstance(keep, ast.Constant) and keep.value is True and set(keywords) == {"axis", "keepdims"}


def _kernel_args(constants: tuple, tables: list[BuiltTable], features: dict[str, np.ndarray]) -> list:
    args = [np.ascontiguousarray(features["ids"], dtype=np.int64)]
    for name in _FEATURES:
        # absent only when the program reads no features (CompiledProgram.reads): never read
        array = features.get(name)
        if array is None:
            array = np.zeros(args[0].shape, dtype=np.bool_ if FEATURE_TYPES[name] == BOOL else np.int64)
        args.append(np.ascontiguousarray(array, dtype=np.bool_ if array.dtype == bool else np.int64))
    for table in tables:
        args.append(table.values)
        args.append(table.errors)
    args.append(tuple(constants))
    return args


def run_loop_kernel(kernel, constants: tuple, tables: list[BuiltTable], features: dict[str, np.ndarray],
                    out: np.ndarray | None = None) -> np.ndarray:
    """Run a loop kernel over a batch; returns raw matrices float64 [B, n, n].

    Args:
        out: a C-contiguous float64 [B, n, n] to write the raw matrices into
            (the kernel sets every entry); a new array when None.
    """
    args = _kernel_args(constants, tables, features)
    batch, n = args[0].shape
    zeroed = out is None
    if out is None:
        out = np.zeros((batch, n, n), dtype=np.float64)
    kernel(*args, True, False, out, zeroed)
    return out


def run_loop_kernel_with_rule(kernel, constants: tuple, tables: list[BuiltTable], features: dict[str, np.ndarray],
                              causal: bool, out: np.ndarray, zeroed: bool = False) -> bool:
    """Run a loop kernel with the output rule fused in, into out (C-contiguous float64 [B, n, n]).

    Args:
        zeroed: out holds zeros only (a fresh np.zeros): paper-form programs then
            skip zeroing their matrix, which is the window's slice of out.

    Returns:
        False when some raw value was NaN or inf (out is then incomplete: rerun
        `run_loop_kernel` and the output rule to name the error).
    """
    return kernel(*_kernel_args(constants, tables, features), bool(causal), True, out, bool(zeroed)) == 0
