"""Hostile: `import re as np` rebinding a name. Must never run."""
import re as np


def hostile(q: int, k: int, w: Window) -> float:
    open("/tmp/attnc_pwned_grammar_import_re_as_other_name", "w")
    return 1.0
