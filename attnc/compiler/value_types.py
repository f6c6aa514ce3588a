"""Static value types of IR expressions ("bool", "int", "float", "str").

Used by hoisting (what a per-vocabulary table holds) and by the array
backends (Python's `and`/`or`, `/` and `**` depend on operand types). A type
that depends on the data (e.g. `2 ** x` is an int or a float depending on the
sign of x) is reported as unsupported rather than guessed.
"""

from __future__ import annotations

import ast

from attnc.compiler.ir import (
    BOOL, FEATURE_TYPES, FLOAT, INT, NUMERIC, STR, Feature, Lookup, Pos, TokStr,
    UnsupportedError, WinLen, join_types,
)

#: str methods a program may call on a token string, with their result types.
STR_METHODS = {
    **{m: STR for m in ("lower", "upper", "strip", "lstrip", "rstrip", "replace", "title", "capitalize",
                        "casefold", "swapcase", "removeprefix", "removesuffix")},
    **{m: BOOL for m in ("startswith", "endswith", "isalpha", "isdigit", "isupper", "islower", "istitle",
                         "isspace", "isalnum", "isnumeric", "isdecimal", "isascii", "isidentifier")},
    **{m: INT for m in ("count", "find", "rfind", "index", "rindex")},
}


def infer_type(node: ast.expr, tables: list | None = None) -> str:
    """The static type of `node` (no local names: they are substituted by now).

    Raises:
        UnsupportedError: a data-dependent or unknown type, with the construct.
    """
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return BOOL
        if isinstance(value, int):
            return INT
        if isinstance(value, float):
            return FLOAT
        if isinstance(value, str):
            return STR
        raise UnsupportedError(f"constant {value!r}")
    if isinstance(node, (Pos, WinLen)):
        return INT
    if isinstance(node, Feature):
        return FEATURE_TYPES[node.name]
    if isinstance(node, TokStr):
        return STR
    if isinstance(node, Lookup):
        if tables is None:
            raise UnsupportedError("table lookup without tables")
        return tables[node.table].kind
    if isinstance(node, ast.Compare):
        return BOOL
    if isinstance(node, ast.UnaryOp):
        operand = infer_type(node.operand, tables)
        if isinstance(node.op, ast.Not):
            return BOOL
        if operand == STR:
            raise UnsupportedError("unary operator on a string")
        if isinstance(node.op, ast.Invert):
            if operand == FLOAT:
                raise UnsupportedError("`~` on a float")
            return INT
        return INT if operand == BOOL else operand
    if isinstance(node, ast.BoolOp):
        return join_types([infer_type(v, tables) for v in node.values])
    if isinstance(node, ast.IfExp):
        infer_type(node.test, tables)
        return join_types([infer_type(node.body, tables), infer_type(node.orelse, tables)])
    if isinstance(node, ast.BinOp):
        return _binop_type(node, infer_type(node.left, tables), infer_type(node.right, tables))
    if isinstance(node, ast.Call):
        return _call_type(node, tables)
    if isinstance(node, ast.Subscript):
        base = infer_type(node.value, tables)
        if base == STR:
            return STR
        raise UnsupportedError(f"indexing a {base}")
    raise UnsupportedError(f"expression {type(node).__name__}")


def _binop_type(node: ast.BinOp, left: str, right: str) -> str:
    op = node.op
    if STR in (left, right):
        if isinstance(op, ast.Add) and left == right == STR:
            return STR
        if isinstance(op, ast.Mult) and {left, right} <= {STR, INT, BOOL}:
            return STR
        if isinstance(op, ast.Mod) and left == STR:
            raise UnsupportedError("string formatting with %")
        raise UnsupportedError(f"{type(op).__name__} on strings")
    if isinstance(op, ast.Div):
        return FLOAT
    if isinstance(op, (ast.BitAnd, ast.BitOr, ast.BitXor)):
        if FLOAT in (left, right):
            raise UnsupportedError("bitwise operator on a float")
        return BOOL if left == right == BOOL else INT
    if isinstance(op, ast.Pow):
        if FLOAT in (left, right):
            return FLOAT
        exponent = node.right
        if isinstance(exponent, ast.Constant) and not isinstance(exponent.value, bool) and exponent.value >= 0:
            return INT
        raise UnsupportedError("integer ** integer whose sign is not known (int or float result)")
    if isinstance(op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv, ast.Mod)):
        return FLOAT if FLOAT in (left, right) else INT
    raise UnsupportedError(f"operator {type(op).__name__}")


#: NumPy functions compiled as elementwise float functions (same values as on a scalar).
NUMPY_ELEMENTWISE = ("exp", "log")


def is_numpy_elementwise(node: ast.AST) -> bool:
    """`np.exp(x)` / `np.log(x)` (also `numpy.`): one number -> a NumPy float."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
        and node.func.attr in NUMPY_ELEMENTWISE and isinstance(node.func.value, ast.Name) \
        and node.func.value.id in ("np", "numpy") and not node.keywords


def numpy_float_inside(node: ast.AST) -> bool:
    """Whether an np.exp/np.log result may flow into `node`'s value.

    Such a value is a NumPy float: dividing by it (or raising 0 of it to a
    negative power) gives inf/NaN where a Python float raises, so kernels
    refuse those spots rather than raise where the interpreter does not.
    """
    return any(is_numpy_elementwise(n) for n in ast.walk(node))


def literal_constant(node: ast.AST) -> ast.Constant | None:
    """`node` as a literal: a constant, or a signed number (`-0.5` is `USub(0.5)` in Python's AST;
    tuned programs write a flipped sign as `-(-0.5)`)."""
    if isinstance(node, ast.Constant):
        return node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = literal_constant(node.operand)
        if inner is None or type(inner.value) not in (int, float):  # -True is an int in Python: not folded
            return None
        return ast.Constant(value=-inner.value if isinstance(node.op, ast.USub) else inner.value)
    return None


def constant_dict_get(node: ast.AST) -> tuple[dict, object] | None:
    """`{k: v, ...}.get(x, default)` on a literal dict of constants: (the dict, default); else None.

    Keys, values and the default may be signed numbers (a relative-position profile
    `{0: 1.2, 1: -0.4}.get(q - k, -2.0)`); `**` unpacking (a None key) is no literal.
    """
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
            and isinstance(node.func.value, ast.Dict) and not node.keywords and len(node.args) == 2):
        return None
    entries = node.func.value
    keys = [literal_constant(k) for k in entries.keys]  # a `**` entry has key None: no literal
    values = [literal_constant(v) for v in entries.values]
    default = literal_constant(node.args[1])
    if any(e is None for e in [*keys, *values, default]):
        return None
    numbers = [e.value for e in [*keys, *values, default] if isinstance(e.value, float)]
    if any(x - x != 0.0 for x in numbers):  # inf/NaN: no literal to write in a kernel
        return None
    return {k.value: v.value for k, v in zip(keys, values)}, default.value


def _dict_get_type(node: ast.Call, tables) -> str:
    """The type of `{...}.get(x, default)`: the values' and default's one type."""
    table, default = constant_dict_get(node)
    kinds = {infer_type(ast.Constant(value=v)) for v in [*table.values(), default]}
    if len(kinds) != 1 or STR in kinds:
        raise UnsupportedError("dict.get() whose values and default are not all ints, all floats or all bools")
    key_kind = infer_type(node.args[0], tables)
    key_kinds = {infer_type(ast.Constant(value=k)) for k in table}
    if key_kind == STR and key_kinds - {STR} or key_kind != STR and (STR in key_kinds or any(k != k for k in table)):
        raise UnsupportedError("dict.get() with keys of another type than the looked-up value")
    return kinds.pop()


def _may_be_bool(node: ast.expr, tables) -> bool:
    """Whether a bool can reach `node`'s value through a conditional or `and`/`or` branch."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.BoolOp):
            return True
        if isinstance(sub, ast.IfExp) and BOOL in (infer_type(sub.body, tables), infer_type(sub.orelse, tables)):
            return True
    return False


def _call_type(node: ast.Call, tables) -> str:
    func = node.func
    if node.keywords:
        raise UnsupportedError("keyword arguments in a call")
    if isinstance(func, ast.Name):
        args = [infer_type(a, tables) for a in node.args]
        name = func.id
        if name == "len" and args == [STR]:
            return INT
        if name in ("min", "max") and len(args) >= 2 and all(a in NUMERIC for a in args):
            kinds = set(args)
            if len(kinds) > 1 and FLOAT in kinds:
                raise UnsupportedError(f"{name}() of ints and floats (result type depends on the values)")
            return join_types(args)
        if name == "abs" and len(args) == 1 and args[0] in NUMERIC:
            return INT if args[0] == BOOL else args[0]
        if name == "float" and len(args) == 1 and args[0] in NUMERIC:
            return FLOAT
        if name == "int" and len(args) == 1 and args[0] in NUMERIC:
            return INT
        if name == "bool" and len(args) == 1:
            return BOOL
        if name == "ord" and args == [STR]:
            return INT
        if name == "str" and len(args) == 1:
            return STR
        raise UnsupportedError(f"call of {name}() with {args}")
    if constant_dict_get(node) is not None:
        return _dict_get_type(node, tables)
    if is_numpy_elementwise(node):
        if len(node.args) != 1 or infer_type(node.args[0], tables) not in (INT, FLOAT) \
                or _may_be_bool(node.args[0], tables):
            # np.exp(True) is a float16 in NumPy: bool arguments stay interpreted
            raise UnsupportedError(f"np.{func.attr}() of something other than one int or float")
        return FLOAT
    if isinstance(func, ast.Attribute) and func.attr in STR_METHODS:
        if infer_type(func.value, tables) != STR:
            raise UnsupportedError(f".{func.attr}() on a non-string")
        for a in node.args:
            infer_type(a, tables)
        return STR_METHODS[func.attr]
    raise UnsupportedError(f"call of {ast.unparse(func) if not isinstance(func, ast.Attribute) else '.' + func.attr}()")
