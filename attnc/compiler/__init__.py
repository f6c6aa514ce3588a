"""attnc.compiler: checked programs -> kernels (numpy, numba, torch) and the batch API.

Read compiling.py first: it is the pipeline of passes.
"""

from attnc.compiler.compiled import (
    CompiledProgram, LibraryOutput, WindowError, SparseRows, evaluate_library,
)
from attnc.compiler.compiling import compile_program
from attnc.compiler.library_build import LibraryReport, build_library
from attnc.compiler.library_format import LibraryError

__all__ = ["CompiledProgram", "LibraryError", "LibraryOutput", "LibraryReport", "SparseRows", "WindowError",
           "build_library", "compile_program", "evaluate_library"]
