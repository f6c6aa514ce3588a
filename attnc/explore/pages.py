"""The site's files: one HTML shell per page with its data embedded as JSON, and the shared assets.

A page is a title, an empty ``<main>`` and ``<script type="application/json"
id="data">``; ``assets/explorer.js`` (shipped in this package, written for
it, no library) draws the page from that record. Everything is relative
links between static files, so the site opens from file:// with no server.
"""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
ASSET_FILES = ("explorer.js", "explorer.css")


def page_html(title: str, data: dict, *, depth: int) -> str:
    """An HTML page of `data` (drawn by explorer.js); `depth`: folders below the site root."""
    up = "../" * depth
    # "</" and "<!--" would end or confuse the <script> element; in JSON strings \/ and \u0021 are / and !.
    payload = (json.dumps(data, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
               .replace("</", "<\\/").replace("<!--", "<\\u0021--"))
    return (
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<link rel=\"stylesheet\" href=\"{up}assets/explorer.css\">\n</head>\n<body>\n"
        f"<main id=\"app\" data-root=\"{up}\"><p class=\"loading\">{html.escape(title)}: loading "
        "(this page needs JavaScript)</p></main>\n"
        f"<script type=\"application/json\" id=\"data\">{payload}</script>\n"
        f"<script src=\"{up}assets/explorer.js\"></script>\n</body>\n</html>\n"
    )


def write_page(path: Path, title: str, data: dict, *, depth: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page_html(title, data, depth=depth), encoding="utf-8")
    return path


def copy_assets(site: Path) -> list[Path]:
    """Copy explorer.js and explorer.css into ``site/assets``."""
    target = site / "assets"
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(ASSETS / name, target / name)) for name in ASSET_FILES]


def head_file(head: str) -> str:
    """The head page's path in the site (``heads/3.7.html``); the script builds the same links."""
    return f"heads/{head}.html"


def program_file(name: str) -> str:
    return f"programs/{name}.html"
