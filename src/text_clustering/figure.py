"""A PNG of the 2-D projection: clusters in colour, noise in grey, each label near its centre
without overlapping the others, and a legend with every cluster's size."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .clustering import NOISE
from .palette import NOISE_COLOUR, cluster_colours

LEGEND_ROWS = 30  # clusters listed in the legend, largest first
MAX_LABELS = 40  # clusters labelled on the PNG, largest first


def cluster_centres(points: np.ndarray, labels: np.ndarray) -> dict[int, tuple[float, float]]:
    """The median point of every cluster (noise excluded), by cluster id: where its label goes."""
    return {
        c: tuple(float(v) for v in np.median(points[labels == c], axis=0))  # type: ignore[misc]
        for c in sorted(int(c) for c in np.unique(labels[labels != NOISE]))
    }


def cluster_annotations(
    points: np.ndarray, labels: np.ndarray, names: Mapping[int, str], *, width: int = 22
) -> list[tuple[float, float, str]]:
    """``(x, y, text)`` per cluster (noise excluded): the label, wrapped to ``width``
    characters, at the median of the cluster's points."""
    return [
        (x, y, textwrap.fill(str(names.get(c, c)), width=width))
        for c, (x, y) in cluster_centres(points, labels).items()
    ]


def _overlaps(box: Any, placed: list[Any]) -> bool:
    return any(box.overlaps(other) for other in placed)


def place_labels(ax: Any, annotations: Any, sizes: Any, renderer: Any) -> list[Any]:
    """Draw the labels largest cluster first; a label that would overlap one already drawn
    moves to the nearest free spot around its centre (with a thin line back to it)."""
    from matplotlib.text import Text  # matplotlib loads on drawing only

    placed: list[Any] = []
    texts: list[Any] = []
    steps = [(0, 0)] + [
        (r * np.cos(a), r * np.sin(a))
        for r in (18, 32, 48, 64, 84, 108)
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ]
    style = {"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#666666", "alpha": 0.9}
    for (x, y, label), _ in sorted(zip(annotations, sizes, strict=True), key=lambda t: -t[1]):
        for step, (dx, dy) in enumerate(steps):
            text = ax.annotate(
                label,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=8,
                bbox=style,
                arrowprops={"arrowstyle": "-", "color": "#666666", "lw": 0.6}
                if (dx or dy)
                else None,
            )
            # the label's own box (an Annotation's extent would include its line back)
            text.update_positions(renderer)
            box = Text.get_window_extent(text, renderer).expanded(1.1, 1.3)
            if not _overlaps(box, placed) or step == len(steps) - 1:
                break  # a free spot, or no free spot at all: keep the farthest try
            text.remove()
        placed.append(box)
        texts.append(text)
    return texts


def save_cluster_figure(
    points: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    path: str | Path,
    *,
    title: str = "Text clusters",
    dpi: int = 150,
    topics: Sequence[str | None] | None = None,
) -> Path:
    """Draw ``points`` ``(n, 2)`` coloured by ``labels`` ``(n,)`` and write a PNG to ``path``.

    ``topics``: each point's topic of the headline level (fct_text_clusters.topic_label), which
    the figure leads with: the title counts them, each is named large at the median of its
    points and a second legend lists them with their sizes; the clusters are then named in
    their legend only.

    ``names`` maps a cluster id to its plain-text label, drawn (wrapped) near the median of
    the cluster's points without overlapping other labels (the ``MAX_LABELS`` largest).
    Noise (-1) is drawn small and grey underneath. A legend lists the largest clusters with
    their sizes. Point size shrinks with the number of points, so 100k points stay readable.
    Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(15, 10))
    noise = labels == NOISE
    ids, counts_array = np.unique(labels[~noise], return_counts=True)
    counts = {int(c): int(n) for c, n in zip(ids, counts_array, strict=True)}
    colour_of = cluster_colours(counts)  # the same colours as the HTML map's
    _scatter(ax, points, labels, colour_of)
    ax.set_xticks([])
    ax.set_yticks([])
    share = noise.mean() if len(labels) else 0.0
    headline = topic_annotations(points, labels, topics) if topics is not None else []
    parts = (
        f"{len(headline)} topics of {len(counts)} clusters"
        if headline
        else f"{len(counts)} clusters"
    )
    ax.set_title(f"{title}: {len(labels)} texts, {parts}, {share:.0%} noise (grey)")
    # largest first; ties by cluster id
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    if headline:
        _topics(ax, headline)
    _legend(ax, ranked, counts, names, colour_of)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    # Only the largest clusters get a label on the picture: past a few dozen they cover it
    # (and placing them costs seconds); the interactive map labels every cluster. With
    # headline topics named on it, the clusters are in the legend only (their boxes hid the
    # topics' names).
    labelled = set(ranked[:MAX_LABELS]) if not headline else set()
    annotations = cluster_annotations(points, labels, names)
    kept = [
        (a, counts[c]) for a, c in zip(annotations, sorted(counts), strict=True) if c in labelled
    ]
    place_labels(ax, [a for a, _ in kept], [n for _, n in kept], renderer)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def _scatter(ax: Any, points: np.ndarray, labels: np.ndarray, colour_of: Mapping[int, str]) -> None:
    """Noise small and grey underneath, then every cluster in one scatter (one per cluster
    costs seconds at hundreds of them), in cluster order so later clusters lie on top."""
    size = float(np.clip(40_000 / max(len(points), 1), 0.3, 20))
    noise = labels == NOISE
    if noise.any():
        ax.scatter(
            points[noise, 0],
            points[noise, 1],
            s=size * 0.6,
            c=NOISE_COLOUR,
            linewidths=0,
            rasterized=True,
        )
    if noise.all():
        return
    clusters = np.unique(labels[~noise])
    order = np.argsort(labels, kind="stable")
    order = order[labels[order] != NOISE]
    index = np.searchsorted(clusters, labels[order])
    colours = np.array([colour_of[int(c)] for c in clusters])
    ax.scatter(
        points[order, 0],
        points[order, 1],
        s=size,
        c=colours[index],
        linewidths=0,
        alpha=0.8,
        rasterized=True,
    )


def topic_annotations(
    points: np.ndarray, labels: np.ndarray, topics: Sequence[str | None]
) -> list[tuple[str, float, float, int]]:
    """``(name, x, y, n_texts)`` of every headline topic (noise left out), largest first
    (ties by name): its name and the median of its points."""
    named = np.array([t or "" for t in topics], dtype=object)
    keep = (labels != NOISE) & (named != "")
    out = []
    for name in sorted(set(named[keep].tolist())):
        mine = keep & (named == name)
        x, y = np.median(points[mine], axis=0)
        out.append((str(name), float(x), float(y), int(mine.sum())))
    return sorted(out, key=lambda t: (-t[3], t[0]))


def _topics(ax: Any, headline: list[tuple[str, float, float, int]]) -> None:
    """Each headline topic's name large, with a white halo, at the median of its points; and
    a legend of the topics with their sizes (below the clusters' legend)."""
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    for name, x, y, _ in headline[:LEGEND_ROWS]:
        ax.text(
            x,
            y,
            textwrap.fill(name, 24),
            fontsize=11,
            fontweight="bold",
            color="#202020",
            ha="center",
            va="center",
            path_effects=halo,
            zorder=6,
        )
    shown = headline[:LEGEND_ROWS]
    legend = ax.legend(
        [Line2D([], [], linestyle="") for _ in shown],
        [f"{textwrap.shorten(name, 40)} ({n})" for name, _, _, n in shown],
        loc="lower left",
        bbox_to_anchor=(1.01, 0.0),
        fontsize=7,
        handlelength=0,
        title="headline topics (texts)",
        title_fontsize=8,
        frameon=False,
    )
    ax.add_artist(legend)  # kept when the clusters' legend is added


def _legend(
    ax: Any,
    ranked: list[int],
    counts: Mapping[int, int],
    names: Mapping[int, str],
    colour_of: Mapping[int, Any],
) -> None:
    """A legend of the ``LEGEND_ROWS`` largest clusters with their sizes."""
    from matplotlib.lines import Line2D

    largest = ranked[:LEGEND_ROWS]
    if not largest:
        return
    ax.legend(
        [
            Line2D([], [], linestyle="", marker="o", markersize=4, color=colour_of[c], alpha=0.8)
            for c in largest
        ],
        [f"{textwrap.shorten(str(names.get(c, c)), 40)} ({counts[c]})" for c in largest],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=7,
        title="clusters (texts)"
        + (f", largest {LEGEND_ROWS}" if len(ranked) > LEGEND_ROWS else ""),
        title_fontsize=8,
        frameon=False,
    )
