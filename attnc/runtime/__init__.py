"""attnc.runtime: models, windows, attention extraction, program libraries and surrogate heads."""

from attnc.runtime.library import Library, LibraryError, load_library
from attnc.runtime.models import LoadedModel, load_model, tiny_model

__all__ = ["Library", "LibraryError", "LoadedModel", "load_library", "load_model", "tiny_model"]
