"""The study explorer: a static site to browse a study's heads, programs and attention.

`build_explorer(OUT)` writes ``OUT/explorer/``: ``index.html`` (the layer x
head grid, a sortable table of heads, the perplexity sweep with its
baselines, QA), ``heads/L.H.html`` (the head's program source, neural vs
program attention on a few held-out windows, statistics) and
``programs/NAME.html`` (the heads that use it). No server and no network:
pages embed their data as JSON and share one script written for them.

Modules: `study_files` (what the out dir holds), `attention_views` (the
windows and matrices shown), `highlight` (Python source to HTML), `payload`
(each page's JSON), `pages` (HTML files and assets), `build` (the pipeline).
"""

from attnc.explore.build import ExplorerSite, build_explorer
from attnc.explore.study_files import ExploreError

__all__ = ["ExploreError", "ExplorerSite", "build_explorer"]
