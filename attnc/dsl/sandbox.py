"""The run-time side of the safety bar: what an executing program can reach.

The instrumented module (instrument.py) routes every attribute access,
subscript, binary operator, comparison and loop through the guards here, and
its globals hold only these guards, wrapped builtins and a restricted `np`.
Each guard checks the *actual* object type against the allow-lists in
`allowlist.py` and charges a per-window budget (limits.py), so a program that
slipped past static checks still cannot reach Python internals, allocate
without bound, or run forever.
"""

from __future__ import annotations

import builtins
import collections
import itertools
import math
import operator
from typing import Any, Callable

import numpy as np
import regex

from attnc.dsl import allowlist, limits
from attnc.dsl.errors import GuardError
from attnc.dsl.regex_support import Pattern, RegexClock, RestrictedRe
from attnc.dsl.spacy_support import DocView, RestrictedSpacy, SpanView, TokenView
from attnc.dsl.tokenizer_adapter import CharSpan, Encoding, TokenizerAdapter

_MATCH_TYPE = type(regex.compile("").match(""))
#: Types whose allow-listed members are read as they are (no charge, no wrapping).
#: CharSpan is a tuple subclass, so this is checked before the container rules.
_PLAIN_MEMBERS = (
    (TokenizerAdapter, allowlist.TOKENIZER_ATTRIBUTES), (Encoding, allowlist.ENCODING_ATTRIBUTES),
    (CharSpan, allowlist.CHAR_SPAN_ATTRIBUTES), (Pattern, allowlist.PATTERN_METHODS),
    (_MATCH_TYPE, allowlist.MATCH_METHODS), (TokenView, allowlist.SPACY_TOKEN_ATTRIBUTES),
    (DocView, allowlist.SPACY_DOC_ATTRIBUTES), (SpanView, allowlist.SPACY_SPAN_ATTRIBUTES),
)

#: Names the instrumented code uses; they start with `__`, which programs may never write.
GUARD_PREFIX = "__attnc_"

_BINARY = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "floordiv": operator.floordiv, "mod": operator.mod, "pow": operator.pow,
    "or": operator.or_, "xor": operator.xor, "and": operator.and_,
}
_INPLACE = {
    "add": operator.iadd, "sub": operator.isub, "mul": operator.imul, "div": operator.itruediv,
    "floordiv": operator.ifloordiv, "mod": operator.imod, "pow": operator.ipow,
    "or": operator.ior, "xor": operator.ixor, "and": operator.iand,
}
_COMPARE = {
    "lt": operator.lt, "gt": operator.gt, "le": operator.le, "ge": operator.ge, "eq": operator.eq,
    "ne": operator.ne, "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
    "is": operator.is_, "isnot": operator.is_not,
}
_SEQUENCES = (str, list, tuple)
#: Methods and attributes charged 1 instead of the container's length.
_CONSTANT_TIME_METHODS = frozenset({"append", "add", "discard", "get", "setdefault", "pop", "keys", "values",
                                    "items", "extend", "update", "shape", "T", "ndim", "size", "item", "reshape"})
_ALLOWED_DTYPES = {
    int, float, bool, np.float64, np.float32, np.int64, np.int32, np.bool_,
    "int", "float", "bool", "float64", "float32", "int64", "int32",
}


def _numpy_internal_import(name, globals=None, locals=None, fromlist=(), level=0):
    """`__import__` for numpy's own lazy imports from C (PyImport_Import looks it up in
    the calling frame's builtins). Programs cannot name it (`__` names are rejected)."""
    import sys

    if level == 0 and name.split(".")[0] == "numpy" and name in sys.modules:
        return builtins.__import__(name, globals, locals, fromlist, level)
    raise GuardError(f"import of {name!r} refused")


class ProgramWindow:
    """The native form's `w`: read-only views of one window's inputs.

    Syntax features (attnc/window_syntax.py) are read from the window's parse
    on first use only: labels as tuples of str, dep_head as a read-only array.
    """

    __slots__ = ("n", "tok", "text", "_features", "_window")

    def __init__(self, window):
        self.n = window.n
        self.tok = tuple(window.tok)
        self.text = window.text
        features = {}
        for name in allowlist.WINDOW_ATTRIBUTES - {"n", "tok", "text"} - allowlist.SYNTAX_WINDOW_ATTRIBUTES:
            array = np.array(getattr(window, name))
            array.flags.writeable = False
            features[name] = array
        self._features = features
        self._window = window

    def feature(self, name: str):
        if name not in self._features:  # a syntax feature: GuardError without the spaCy extra
            self._features[name] = getattr(self._window, name)
        return self._features[name]


class RestrictedNumpy:
    """`np` as programs see it: only the allow-listed functions, each guarded."""

    def __init__(self, functions: dict[str, Any]):
        self._members = dict(functions)

    def member(self, name: str):
        return self._members[name]


def _size_of_shape(shape) -> int:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    total = 1
    for dim in dims:
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise GuardError(f"array dimensions must be integers, got {type(dim).__name__}")
        if dim < 0:
            raise GuardError("negative array dimension")
        total *= int(dim)
    return total


def _shape(value) -> tuple[int, ...]:
    if isinstance(value, np.ndarray):
        return value.shape
    if isinstance(value, (int, float, bool, np.generic)) or value is None:
        return ()
    if isinstance(value, (list, tuple)):
        shape = [len(value)]
        inner = value
        while inner and isinstance(inner[0], (list, tuple, np.ndarray)):
            inner = inner[0]
            shape.append(len(inner))
        return tuple(shape)
    return ()


def _text_width(value, budget: int = 1_000_000) -> int:
    """Longest string inside `value` (str, string arrays, nested lists), in characters."""
    width, stack, seen = 0, [value], 0
    while stack and seen < budget:
        item = stack.pop()
        seen += 1
        if isinstance(item, str):
            width = max(width, len(item))
        elif isinstance(item, np.ndarray) and item.dtype.kind in "US":
            width = max(width, item.itemsize // (4 if item.dtype.kind == "U" else 1))
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return width


class Sandbox:
    """Guards and namespace for one run of a program on a window of n tokens."""

    def __init__(self, n: int, text: str = ""):
        self.n = n
        self.text = text
        self.loops_left = limits.loop_budget(n)
        self.work_left = limits.work_budget(n)
        self.max_elements = limits.max_elements(n)
        self.regex_clock = RegexClock()
        self.active_calls: set[str] = set()

    # -- budgets --------------------------------------------------------------
    def charge(self, elements: int, what: str = "operation") -> None:
        if elements > self.max_elements:
            raise GuardError(f"{what} would create {elements} elements, more than the limit "
                             f"{self.max_elements} for a window of {self.n} tokens")
        self.work_left -= max(1, int(elements))
        if self.work_left < 0:
            raise GuardError(f"stopped by work bound: more than {limits.work_budget(self.n)} element operations "
                             f"on a window of {self.n} tokens")

    def counted(self, iterable):
        for item in iterable:
            self.loops_left -= 1
            if self.loops_left < 0:
                raise GuardError(f"stopped by loop bound: more than {limits.loop_budget(self.n)} loop iterations "
                                 f"on a window of {self.n} tokens")
            yield item

    def loop_test(self, value):
        """A `while` condition: each test is one iteration of the loop budget."""
        self.loops_left -= 1
        if self.loops_left < 0:
            raise GuardError(f"stopped by loop bound: more than {limits.loop_budget(self.n)} loop iterations "
                             f"on a window of {self.n} tokens")
        return value

    def enter(self, key: str) -> None:
        if key in self.active_calls:
            raise GuardError(f"recursive call of `{key.split(':')[0]}` refused")
        if len(self.active_calls) >= limits.MAX_CALL_DEPTH:
            raise GuardError(f"more than {limits.MAX_CALL_DEPTH} nested function calls")
        self.active_calls.add(key)

    def leave(self, key: str) -> None:
        self.active_calls.discard(key)

    @staticmethod
    def reraise(exc: BaseException) -> None:
        """First statement of every except handler: a guard's stop is never caught."""
        if isinstance(exc, GuardError) or not isinstance(exc, Exception):
            raise exc

    def bounded(self, iterable, what: str) -> list:
        """Materialise an iterable, refusing more than max_elements items."""
        if hasattr(iterable, "__len__"):
            self.charge(len(iterable), what)
        items = list(itertools.islice(iterable, self.max_elements + 1))
        self.charge(len(items), what)
        return items

    # -- guards called by instrumented code ------------------------------------
    def attr(self, obj: Any, name: str) -> Any:
        for kind, members in _PLAIN_MEMBERS:
            if isinstance(obj, kind):
                if name in members:
                    return getattr(obj, name)
                raise GuardError(f"attribute `.{name}` is not available on {type(obj).__name__} values")
        if isinstance(obj, RestrictedNumpy):
            if name in allowlist.NUMPY_FUNCTIONS or name in allowlist.NUMPY_CONSTANTS:
                return obj.member(name)
        elif isinstance(obj, ProgramWindow):
            if name in allowlist.WINDOW_ATTRIBUTES:
                return getattr(obj, name) if name in ("n", "tok", "text") else obj.feature(name)
        elif isinstance(obj, str):
            if name in allowlist.STR_METHODS:
                self.charge(len(obj), f"str.{name}")
                return self._str_method(obj, name)
        elif isinstance(obj, (list, tuple, set, frozenset, dict)):
            allowed = {list: allowlist.LIST_METHODS, tuple: allowlist.TUPLE_METHODS, set: allowlist.SET_METHODS,
                       frozenset: allowlist.SET_METHODS, dict: allowlist.DICT_METHODS,
                       collections.defaultdict: allowlist.DICT_METHODS,
                       collections.Counter: allowlist.DICT_METHODS | allowlist.COUNTER_METHODS}.get(type(obj),
                                                                                                 frozenset())
            if name in allowed:
                self.charge(1 if name in _CONSTANT_TIME_METHODS else len(obj), f".{name}")
                method = getattr(obj, name)
                if name in ("append", "add", "insert", "setdefault") and len(obj) >= self.max_elements:
                    raise GuardError(f".{name} would grow a container past {self.max_elements} elements")
                if name in ("extend", "update", "union"):
                    return self._growing(obj, method, name)
                return method
        elif isinstance(obj, (np.ndarray, np.generic)):
            if name in allowlist.TENSOR_IDENTITY_METHODS:
                return lambda: obj
            if name in allowlist.ARRAY_ATTRIBUTES:
                self.charge(1 if name in _CONSTANT_TIME_METHODS else int(np.size(obj)), f"array.{name}")
                value = getattr(obj, name)
                if name == "astype":
                    return lambda dtype, **kw: value(self._dtype(dtype))
                return value
        elif isinstance(obj, RestrictedSpacy):
            return obj.member(name)
        elif isinstance(obj, RestrictedRe):
            if name in allowlist.RE_FUNCTIONS | allowlist.RE_OTHER_FUNCTIONS | allowlist.RE_FLAGS:
                return obj.member(name)
        raise GuardError(f"attribute `.{name}` is not available on {type(obj).__name__} values")

    def _str_method(self, text: str, name: str):
        method = getattr(text, name)
        if name == "replace":
            def replace(old, new, count=-1):
                if not isinstance(old, str) or not isinstance(new, str):
                    raise GuardError("str.replace needs strings")
                hits = text.count(old) if old else len(text) + 1
                self.charge(len(text) + hits * max(0, len(new) - len(old)), "str.replace")
                return method(old, new, count)
            return replace
        if name == "join":
            def join(parts):
                parts = self.bounded(parts, "str.join")
                self.charge(sum(len(p) if isinstance(p, str) else 1 for p in parts) + len(text) * len(parts),
                            "str.join")
                return method(parts)
            return join
        return method

    def _growing(self, container, method, name: str):
        def grow(*others):
            total = len(container)
            for other in others:
                total += len(other) if hasattr(other, "__len__") else self.max_elements + 1
            self.charge(total, f".{name}")
            return method(*others)
        return grow

    def _dtype(self, dtype):
        try:
            allowed = dtype in _ALLOWED_DTYPES
        except TypeError:
            allowed = False
        if not allowed:
            raise GuardError(f"dtype {dtype!r} is not allowed; use int, float, bool or np.float64/np.int64")
        return dtype

    def _check_sequence_product(self, a, b) -> None:
        for seq, count in ((a, b), (b, a)):
            if isinstance(seq, _SEQUENCES) and isinstance(count, (int, np.integer)) and not isinstance(count, bool):
                self.charge(len(seq) * max(0, int(count)), "sequence repetition")

    def _check_arrays(self, a, b, what: str) -> None:
        if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
            try:
                shape = np.broadcast_shapes(_shape(a), _shape(b))
            except ValueError as exc:
                raise GuardError(f"{what}: shapes do not broadcast ({exc})") from None
            width = _text_width(a) + _text_width(b) if what == "array operation" else 0
            self.charge(_size_of_shape(shape) * max(1, width), what)

    def binop(self, op: str, a, b, inplace: bool = False):
        if op == "mod" and isinstance(a, (str, bytes)):
            raise GuardError("string formatting with % is not allowed")
        if op == "mul":
            self._check_sequence_product(a, b)
        if op == "add" and isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES):
            self.charge(len(a) + len(b), "concatenation")
        if isinstance(a, int) and isinstance(b, int):
            if op == "pow" and b > 0 and abs(a) > 1 and b * max(1, abs(a).bit_length()) > limits.MAX_INT_BITS:
                raise GuardError(f"integer power {a} ** {b} is too large")
            if op == "mul" and abs(a).bit_length() + abs(b).bit_length() > limits.MAX_INT_BITS:
                raise GuardError("integer product is too large")
        if op == "pow" and isinstance(a, (float, int)) and isinstance(b, (float, int)):
            try:
                return math.pow(a, b) if isinstance(a, float) or isinstance(b, float) else operator.pow(a, b)
            except (OverflowError, ValueError) as exc:
                raise GuardError(f"power {a} ** {b}: {exc}") from None
        self._check_arrays(a, b, "array operation")
        return (_INPLACE if inplace else _BINARY)[op](a, b)

    def inplace(self, op: str, a, b):
        return self.binop(op, a, b, inplace=True)

    def compare(self, op: str, a, b):
        if op in ("in", "notin"):
            if isinstance(b, (list, tuple, str, np.ndarray)):
                self.charge(len(b) if not isinstance(b, np.ndarray) else b.size, "membership test")
        elif op in ("eq", "ne") and isinstance(a, (list, tuple, str)):
            self.charge(len(a), "comparison")
        self._check_arrays(a, b, "array comparison")
        return _COMPARE[op](a, b)

    def _index_size(self, obj: np.ndarray, index) -> int:
        items = index if isinstance(index, tuple) else (index,)
        size, dims = 1, list(obj.shape)
        array_sizes = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, slice):
                if dims:
                    size *= len(range(*item.indices(dims.pop(0))))
            elif isinstance(item, (int, np.integer)):
                if dims:
                    dims.pop(0)
            else:
                array = np.asarray(item)
                array_sizes.append(array.size)
                for _ in range(max(1, array.ndim) if array.dtype != bool else max(1, array.ndim)):
                    if dims:
                        dims.pop(0)
        for dim in dims:
            size *= dim
        for array_size in array_sizes:
            size *= max(1, array_size)
        return size

    def getitem(self, obj, index):
        if isinstance(obj, np.ndarray):
            if isinstance(index, (list, np.ndarray)) or (isinstance(index, tuple) and any(
                    isinstance(i, (list, np.ndarray, tuple)) for i in index)):
                self.charge(self._index_size(obj, index), "array indexing")
            return obj[index]
        if isinstance(obj, (list, tuple, str, range)):
            if isinstance(index, slice):
                self.charge(len(obj), "slice")
            return obj[index]
        if isinstance(obj, collections.defaultdict) and index not in obj and len(obj) >= self.max_elements:
            raise GuardError(f"dict would grow past {self.max_elements} entries")
        if isinstance(obj, (dict, Encoding, _MATCH_TYPE, DocView, SpanView)):
            return obj[index]
        raise GuardError(f"{type(obj).__name__} values cannot be indexed")

    def setitem(self, obj, index, value) -> None:
        if isinstance(obj, list) and isinstance(index, slice):
            grows = len(value) if hasattr(value, "__len__") else self.max_elements + 1
            self.charge(len(obj) + grows, "slice assignment")
        if isinstance(obj, np.ndarray) and isinstance(value, np.ndarray):
            self.charge(value.size, "array assignment")
        if not isinstance(obj, (list, dict, np.ndarray)):
            raise GuardError(f"{type(obj).__name__} values do not support item assignment")
        if isinstance(obj, dict) and len(obj) >= self.max_elements and index not in obj:
            raise GuardError(f"dict would grow past {self.max_elements} entries")
        obj[index] = value

    # -- builtins and numpy --------------------------------------------------------
    def _builtins(self) -> dict[str, Callable]:
        sandbox = self

        def range_(*args):
            for arg in args:
                if not isinstance(arg, (int, np.integer)) or isinstance(arg, bool):
                    raise GuardError(f"range() needs integers, got {type(arg).__name__}")
            r = builtins.range(*(int(a) for a in args))
            if len(r) > limits.loop_budget(sandbox.n):
                raise GuardError(f"stopped by loop bound: range of {len(r)} elements is more than the "
                                 f"{limits.loop_budget(sandbox.n)} iterations allowed on {sandbox.n} tokens")
            return r

        def charged(fn, what):
            def call(*args, **kwargs):
                for arg in args:
                    if hasattr(arg, "__len__") and not isinstance(arg, RestrictedNumpy):
                        sandbox.charge(len(arg), what)
                return fn(*args, **kwargs)
            return call

        def materialise(kind):
            def call(iterable=(), *rest, **kwargs):
                if rest:
                    raise GuardError(f"{kind.__name__}() takes one argument")
                return kind(sandbox.bounded(iterable, f"{kind.__name__}()"), **kwargs)
            return call

        def dict_(iterable=(), **kwargs):
            if isinstance(iterable, dict):
                sandbox.charge(len(iterable), "dict()")
                return dict(iterable, **kwargs)
            return dict(sandbox.bounded(iterable, "dict()"), **kwargs)

        def sum_(iterable, start=0):
            if not isinstance(start, (int, float, np.number)):
                raise GuardError("sum() start must be a number")
            if isinstance(iterable, np.ndarray):
                sandbox.charge(iterable.size, "sum()")
                return iterable.sum() + start
            return builtins.sum(sandbox.bounded(iterable, "sum()"), start)

        def sorted_(iterable, key=None, reverse=False):
            return builtins.sorted(sandbox.bounded(iterable, "sorted()"), key=key, reverse=reverse)

        def str_(value=""):
            if hasattr(value, "__len__") and not isinstance(value, (str, np.ndarray)):
                sandbox.charge(len(value) * max(4, _text_width(value) + 4), "str()")
            if not isinstance(value, (str, int, float, bool, list, tuple, dict, set, np.ndarray, np.generic,
                                      TokenView, SpanView)) \
                    and value is not None:
                raise GuardError(f"str() of {type(value).__name__} values is not allowed")
            return builtins.str(value)

        def int_(value=0):
            if isinstance(value, str) and len(value) > 100:
                raise GuardError("int() of a string longer than 100 characters")
            return builtins.int(value)

        def defaultdict_(default_factory=None, *mapping):
            if default_factory is not None and not callable(default_factory):
                raise GuardError("defaultdict() needs a function or a type such as int or list")
            if len(mapping) > 1:
                raise GuardError("defaultdict() takes a factory and at most one mapping")
            items = sandbox.bounded(mapping[0].items() if mapping and isinstance(mapping[0], dict) else
                                    (mapping[0] if mapping else ()), "defaultdict()")
            return collections.defaultdict(default_factory, items)

        def counter_(iterable=()):
            if isinstance(iterable, dict):
                sandbox.charge(len(iterable), "Counter()")
                return collections.Counter(iterable)
            return collections.Counter(sandbox.bounded(iterable, "Counter()"))

        def next_(iterator, *default):
            if len(default) > 1:
                raise GuardError("next() takes an iterator and at most one default")
            return builtins.next(iterator, *default)

        exceptions = {name: getattr(builtins, name) for name in allowlist.EXCEPTION_NAMES}
        return {
            **exceptions, "defaultdict": defaultdict_, "Counter": counter_, "next": next_,
            "len": builtins.len, "range": range_, "enumerate": builtins.enumerate, "zip": builtins.zip,
            "reversed": builtins.reversed, "abs": builtins.abs, "round": builtins.round, "bool": builtins.bool,
            "float": builtins.float, "int": int_, "str": str_,
            "min": charged(builtins.min, "min()"), "max": charged(builtins.max, "max()"),
            "any": charged(builtins.any, "any()"), "all": charged(builtins.all, "all()"), "sum": sum_,
            "list": materialise(list), "set": materialise(set), "tuple": materialise(tuple), "dict": dict_,
            "sorted": sorted_,
        }

    def _numpy(self) -> RestrictedNumpy:
        sandbox = self

        def alloc_shape(args, kwargs):
            return _size_of_shape(args[0] if args else kwargs.get("shape", 0))

        def eye_size(args, kwargs):
            rows = args[0]
            cols = args[1] if len(args) > 1 and args[1] is not None else rows
            return _size_of_shape((rows, cols))

        def arange_size(args, kwargs):
            if not args or len(args) > 3:
                raise GuardError("np.arange takes 1 to 3 numbers")
            start, stop, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], args[2] if len(args) == 3 else 1)
            if step == 0:
                raise GuardError("np.arange step is 0")
            return max(0, math.ceil((stop - start) / step))

        def outer_size(args, kwargs):
            return _size_of_shape(np.shape(args[0])) * _size_of_shape(np.shape(args[1]))

        def diag_size(args, kwargs):
            shape = _shape(args[0])
            return shape[0] ** 2 if len(shape) == 1 else _size_of_shape(shape)

        def broadcast_size(args, kwargs):
            shapes = [_shape(a) for a in list(args) + list(kwargs.values())]
            try:
                out = _size_of_shape(np.broadcast_shapes(*shapes)) if shapes else 1
            except ValueError:
                out = 0
            return max([out] + [_size_of_shape(s) for s in shapes])

        estimators = {
            "zeros": alloc_shape, "ones": alloc_shape, "full": alloc_shape, "eye": eye_size,
            "identity": lambda a, k: _size_of_shape((a[0], a[0])), "arange": arange_size, "outer": outer_size,
            "diag": diag_size,
        }

        def guarded(name, fn):
            estimate = estimators.get(name, broadcast_size)

            def call(*args, **kwargs):
                if "dtype" in kwargs:
                    kwargs["dtype"] = sandbox._dtype(kwargs["dtype"])
                try:
                    size = estimate(args, kwargs)
                except (TypeError, IndexError, OverflowError) as exc:
                    raise GuardError(f"np.{name}: bad arguments ({exc})") from None
                sandbox.charge(size * max(1, _text_width([list(args), list(kwargs.values())])), f"np.{name}")
                result = fn(*args, **kwargs)
                if isinstance(result, np.ndarray) and result.dtype == object:
                    raise GuardError(f"np.{name} produced an object array")
                return result
            call.__name__ = name
            return call

        members: dict[str, Any] = {name: guarded(name, getattr(np, name)) for name in allowlist.NUMPY_FUNCTIONS}
        members.update({"float64": np.float64, "float32": np.float32, "int64": np.int64, "int32": np.int32,
                        "bool_": np.bool_, "newaxis": None, "inf": np.inf, "pi": np.pi})
        missing = (allowlist.NUMPY_FUNCTIONS | allowlist.NUMPY_CONSTANTS) - set(members)
        assert not missing, missing
        return RestrictedNumpy(members)

    def namespace(self) -> dict[str, Any]:
        """Globals for exec: no real builtins, only guards, wrapped builtins and `np`."""
        space: dict[str, Any] = {"__builtins__": {"__import__": _numpy_internal_import}}
        space.update(self._builtins())
        space["np"] = self._numpy()
        space["re"] = RestrictedRe(self)
        space["spacy"] = RestrictedSpacy(self.text)
        space.update({
            GUARD_PREFIX + "loop": self.loop_test,
            GUARD_PREFIX + "enter": self.enter,
            GUARD_PREFIX + "leave": self.leave,
            GUARD_PREFIX + "reraise": self.reraise,
            GUARD_PREFIX + "attr": self.attr,
            GUARD_PREFIX + "iter": self.counted,
            GUARD_PREFIX + "binop": self.binop,
            GUARD_PREFIX + "inplace": self.inplace,
            GUARD_PREFIX + "compare": self.compare,
            GUARD_PREFIX + "getitem": self.getitem,
            GUARD_PREFIX + "setitem": self.setitem,
            GUARD_PREFIX + "slice": builtins.slice,
        })
        return space
