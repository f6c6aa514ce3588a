"""Renderings of a `HeadComparison`: text for the terminal and a PNG of two heatmaps.

Both scale shades by the square root of the weight, so diffuse attention
(many small weights) stays visible next to a program's sharp ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from attnc.authoring.show import HeadComparison

#: Shades from weight ~0 to 1 (index = floor(sqrt(weight) * 9), capped at 8).
SHADES = ".:-=+*#%@"
#: Longest window drawn as a character grid; longer ones list each row's top keys.
GRID_MAX_TOKENS = 40
#: Keys listed per query row in the top-keys rendering.
TOP_KEYS = 3
#: Longest window whose PNG axes get one label per token.
PNG_LABEL_MAX_TOKENS = 80


def _shade(weight: float) -> str:
    return SHADES[min(len(SHADES) - 1, int(np.sqrt(max(weight, 0.0)) * len(SHADES)))]


def _grid_row(matrix: np.ndarray, q: int) -> str:
    return "".join(_shade(matrix[q, k]) if k <= q else " " for k in range(matrix.shape[1]))


def _fit(label: str, width: int) -> str:
    return label if len(label) <= width else label[:width - 1] + "~"


def render_grid(comparison: HeadComparison, label_width: int = 12) -> str:
    """Both matrices as character grids side by side (rows: queries, columns: keys)."""
    n = len(comparison.ids)
    width = max(n, len("program"))
    lines = [f"{'':>4} {'query':<{label_width}} {'program':<{width}}  head {comparison.head_name}"]
    for q, label in enumerate(comparison.labels):
        lines.append(f"{q:>4} {_fit(label, label_width):<{label_width}} "
                     f"{_grid_row(comparison.program_matrix, q):<{width}}  {_grid_row(comparison.attention, q)}")
    lines.append(f"shades by sqrt(weight): '{SHADES[0]}' ~0 ... '{SHADES[-1]}' 1; column k is key position k")
    return "\n".join(lines)


def _top_keys(matrix: np.ndarray, q: int, labels: list[str]) -> str:
    row = matrix[q, :q + 1]
    order = np.argsort(-row, kind="stable")[:TOP_KEYS]
    return ", ".join(f"{k} {_fit(labels[k], 10)!r} {row[k]:.2f}" for k in order if row[k] > 0)


def render_top_keys(comparison: HeadComparison) -> str:
    """For each query row, the top keys of the program and of the head, with weights."""
    lines = []
    for q, label in enumerate(comparison.labels):
        lines.append(f"{q:>4} {_fit(label, 12)!r:<14} program: {_top_keys(comparison.program_matrix, q, comparison.labels)}")
        lines.append(f"{'':>19} head:    {_top_keys(comparison.attention, q, comparison.labels)}")
    return "\n".join(lines)


def render_text(comparison: HeadComparison) -> str:
    """The terminal rendering: a grid for short windows, top keys per row otherwise, then the IoU."""
    n = len(comparison.ids)
    body = render_grid(comparison) if n <= GRID_MAX_TOKENS else render_top_keys(comparison)
    header = (f"program {comparison.program} vs head {comparison.head_name} of {comparison.model} "
              f"on {n} tokens")
    return f"{header}\n{body}\nIoU = {comparison.iou:.4f}"


def render_png(comparison: HeadComparison, path: str | Path) -> Path:
    """Write both matrices as heatmaps with token labels to a PNG (matplotlib Agg).

    Returns:
        The path written (parent directories are created).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    n = len(comparison.ids)
    side = min(12.0, max(3.5, 0.22 * n + 1.5))
    fig, axes = plt.subplots(1, 2, figsize=(2 * side + 1.2, side + 0.8), constrained_layout=True)
    mask = np.triu(np.ones((n, n), dtype=bool), 1)
    panels = ((comparison.program_matrix, f"program {comparison.program}"),
              (comparison.attention, f"head {comparison.head_name} ({comparison.model})"))
    image = None
    for ax, (matrix, title) in zip(axes, panels):
        image = ax.imshow(np.ma.masked_array(matrix, mask), cmap="viridis", norm=PowerNorm(0.5, vmin=0.0, vmax=1.0),
                          interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        if n <= PNG_LABEL_MAX_TOKENS:
            size = max(4, min(9, int(300 / max(n, 1))))
            ax.set_xticks(range(n), comparison.labels, rotation=90, fontsize=size)
            ax.set_yticks(range(n), comparison.labels, fontsize=size)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="weight (sqrt scale)")
    fig.suptitle(f"IoU = {comparison.iou:.4f}", fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
