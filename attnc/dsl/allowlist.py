"""What a program may name: builtins, numpy functions, methods, attributes.

These tables are used twice: statically by `validate.py` (a name or attribute
outside them is an error) and at run time by `sandbox.py` (every attribute
access is checked against the table for the object's actual type).
"""

from __future__ import annotations

from attnc.window import FEATURE_NAMES, SPECIAL_TOKEN_ROLES
from attnc.window_syntax import SYNTAX_FEATURE_NAMES

#: Builtins a program may call.
BUILTINS = frozenset({
    "len", "range", "enumerate", "zip", "min", "max", "abs", "sum", "any", "all",
    "int", "float", "bool", "str", "list", "set", "dict", "tuple", "sorted", "reversed", "round", "next",
})

#: Builtins whose `key=` may be a `lambda` (the only place a lambda may appear),
#: and the list method that takes one.
KEY_FUNCTION_CALLS = frozenset({"sorted", "max", "min", "sort"})

#: Built-in exception classes an `except` clause may name (and only there).
#: `BaseException` and a bare `except:` are rejected: they would also name
#: KeyboardInterrupt/SystemExit. Guard errors derive from none of these.
EXCEPTION_NAMES = frozenset({
    "Exception", "ArithmeticError", "LookupError", "IndexError", "KeyError", "ValueError", "ZeroDivisionError",
    "TypeError", "AttributeError", "StopIteration", "OverflowError", "FloatingPointError", "UnicodeError",
    "RuntimeError", "NameError", "AssertionError",
})

#: Names from `from collections import ...` a program may call (dict subclasses;
#: they get the dict methods plus these).
COLLECTIONS_NAMES = frozenset({"defaultdict", "Counter"})
COUNTER_METHODS = frozenset({"most_common", "elements", "total"})

#: `re.<name>` (after `import re`): functions whose pattern must be a string
#: literal, and flags. Matching runs on the `regex` package with a time budget.
RE_FUNCTIONS = frozenset({"compile", "search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split"})
RE_OTHER_FUNCTIONS = frozenset({"escape"})
RE_FLAGS = frozenset({"IGNORECASE", "I", "MULTILINE", "M", "DOTALL", "S", "VERBOSE", "X", "ASCII", "A",
                      "UNICODE", "U"})
#: Methods of a compiled pattern, and of a match.
PATTERN_METHODS = frozenset({"search", "match", "fullmatch", "findall", "finditer", "sub", "subn", "split"})
MATCH_METHODS = frozenset({"group", "groups", "start", "end", "span"})

#: Names that may never appear, not even as a local variable.
DANGEROUS_NAMES = frozenset({
    "exec", "eval", "compile", "open", "getattr", "setattr", "delattr", "globals", "locals", "vars",
    "breakpoint", "os", "sys", "subprocess", "socket", "shutil", "importlib", "builtins", "ctypes", "pickle",
    "marshal", "object", "type",
})

#: Names a program cannot read (they are not provided), with the reason shown to
#: the author. Those outside DANGEROUS_NAMES may be reused as local variable names.
FORBIDDEN_NAMES = {
    name: "runs or loads code, or reaches outside the program"
    for name in (
        "exec", "eval", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals", "locals",
        "vars", "dir", "breakpoint", "input", "print", "help", "type", "object", "super", "memoryview",
        "bytearray", "bytes", "exit", "quit", "id", "hash", "iter", "format", "classmethod",
        "staticmethod", "property", "issubclass", "isinstance", "callable", "os", "sys", "subprocess",
        "socket", "shutil", "importlib", "builtins", "pathlib", "ctypes", "pickle", "marshal", "io",
        "torch", "numpy", "transformers", "Window", "ascii", "repr", "chr", "ord", "map", "filter", "slice",
        "frozenset", "complex", "divmod", "pow", "bin", "hex", "oct",
    )
}

#: `np.<name>` functions a program may call.
NUMPY_FUNCTIONS = frozenset({
    "zeros", "ones", "full", "eye", "identity", "zeros_like", "ones_like", "full_like", "tril", "triu",
    "arange", "clip", "sum", "divide", "where", "maximum", "minimum", "exp", "log", "log1p", "nan_to_num",
    "abs", "sqrt", "array", "asarray", "mean", "max", "min", "argmax", "argmin", "outer", "power", "isin",
    "cumsum", "fill_diagonal", "any", "all", "sign", "floor", "ceil", "round", "square", "logical_and",
    "logical_or", "logical_not", "count_nonzero", "diag", "allclose", "isclose", "argsort", "sort",
})
#: `np.<name>` values (dtypes and constants).
NUMPY_CONSTANTS = frozenset({"float64", "float32", "int64", "int32", "bool_", "newaxis", "inf", "pi"})
#: `np.<name>` allowed only inside type annotations.
NUMPY_ANNOTATIONS = frozenset({"ndarray"})

STR_METHODS = frozenset({
    "lower", "upper", "strip", "lstrip", "rstrip", "startswith", "endswith", "isalpha", "isdigit",
    "isnumeric", "isalnum", "isupper", "islower", "istitle", "isspace", "replace", "split", "join", "find",
    "rfind", "count", "index", "title", "capitalize", "casefold", "removeprefix", "removesuffix",
})
LIST_METHODS = frozenset({"append", "extend", "pop", "index", "count", "insert", "remove", "sort", "reverse", "copy"})
TUPLE_METHODS = frozenset({"index", "count"})
SET_METHODS = frozenset({"add", "discard", "remove", "union", "intersection", "difference", "issubset",
                         "issuperset", "update", "copy", "pop"})
DICT_METHODS = frozenset({"get", "keys", "values", "items", "setdefault", "pop", "update", "copy"})
ARRAY_ATTRIBUTES = frozenset({
    "sum", "max", "min", "mean", "argmax", "argmin", "tolist", "item", "copy", "astype", "reshape",
    "flatten", "any", "all", "fill", "cumsum", "shape", "T", "ndim", "size", "squeeze", "numpy", "dtype",
})
#: Tensor spellings that are the identity on the adapter's arrays (`ids.numpy()`, `.cpu()`, `.detach()`).
TENSOR_IDENTITY_METHODS = frozenset({"numpy", "cpu", "detach"})
#: The paper form's tokenizer adapter (attnc/dsl/tokenizer_adapter.py).
TOKENIZER_ATTRIBUTES = frozenset({
    "convert_ids_to_tokens", "convert_tokens_to_ids", "decode", "batch_decode", "tokenize", "encode",
    "all_special_ids", "all_special_tokens", "get_vocab", "vocab", "vocab_size",
    *SPECIAL_TOKEN_ROLES, *(role + "_id" for role in SPECIAL_TOKEN_ROLES),
})
ENCODING_ATTRIBUTES = frozenset({"input_ids", "attention_mask", "word_ids", "words", "tokens", "offset_mapping",
                                 "token_to_chars", "token_to_word", "keys"})
#: A `CharSpan` (what `token_to_chars` returns).
CHAR_SPAN_ATTRIBUTES = frozenset({"start", "end"})
#: spaCy views (attnc/dsl/spacy_support.py, the `attnc[spacy]` extra): token, doc, span members.
SPACY_TOKEN_ATTRIBUTES = frozenset({"text", "i", "idx", "pos_", "tag_", "dep_", "head", "children", "lemma_",
                                    "is_stop", "is_punct", "is_alpha", "ent_type_", "like_num"})
SPACY_DOC_ATTRIBUTES = frozenset({"text", "sents", "noun_chunks", "ents"})
SPACY_SPAN_ATTRIBUTES = frozenset({"start", "end", "text"})
#: The syntax features of `w` (attnc/window_syntax.py; they need the spaCy extra).
SYNTAX_WINDOW_ATTRIBUTES = frozenset(SYNTAX_FEATURE_NAMES)
#: What `w` offers in the native form.
WINDOW_ATTRIBUTES = frozenset({"n", "tok", "text", *FEATURE_NAMES, *SYNTAX_FEATURE_NAMES})

#: Every attribute name a program may write after a dot (other than `np.`).
ALL_ATTRIBUTES = (STR_METHODS | LIST_METHODS | TUPLE_METHODS | SET_METHODS | DICT_METHODS | ARRAY_ATTRIBUTES
                  | TENSOR_IDENTITY_METHODS | TOKENIZER_ATTRIBUTES | ENCODING_ATTRIBUTES | CHAR_SPAN_ATTRIBUTES
                  | WINDOW_ATTRIBUTES | COUNTER_METHODS | PATTERN_METHODS | MATCH_METHODS
                  | SPACY_TOKEN_ATTRIBUTES | SPACY_DOC_ATTRIBUTES | SPACY_SPAN_ATTRIBUTES)

#: Keyword argument names a call may use.
KEYWORD_ARGUMENTS = frozenset({
    "axis", "keepdims", "dtype", "k", "reverse", "key", "default", "return_tensors", "add_special_tokens",
    "skip_special_tokens", "clean_up_tokenization_spaces", "padding", "truncation", "return_attention_mask",
    "nan", "posinf", "neginf", "ndigits", "maxsplit", "sep", "batch_index", "fill_value", "initial",
    "a_min", "a_max", "rtol", "atol", "assume_unique", "invert", "start", "stop", "step", "kind",
    "where", "out", "return_offsets_mapping", "flags", "count", "return_token_type_ids", "max_length",
})

#: Tokenizer and encoding classes a program may declare (`from transformers import ...`)
#: and name in annotations, and only there.
TRANSFORMERS_NAMES = frozenset({
    "PreTrainedTokenizerBase", "PreTrainedTokenizer", "PreTrainedTokenizerFast", "AutoTokenizer",
    "GPT2Tokenizer", "GPT2TokenizerFast", "BertTokenizer", "BertTokenizerFast", "LlamaTokenizer",
    "LlamaTokenizerFast", "BatchEncoding",
})

#: Names allowed inside type annotations (annotations are not executed).
ANNOTATION_NAMES = frozenset({
    "int", "float", "str", "bool", "list", "dict", "set", "tuple", "Window", "PreTrainedTokenizerBase",
    "PreTrainedTokenizer", "PreTrainedTokenizerFast", "Any", "List", "Dict", "Set", "Tuple", "Optional",
    "Sequence", "Union", "Callable", "Iterable", "Mapping", "None",
})
