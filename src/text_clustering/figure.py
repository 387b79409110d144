"""A PNG of the 2-D projection to put on a slide: clusters in colour (each its own, as on the
HTML map), noise in grey, the headline topics named large in two columns beside the map with
leader lines to their points, the largest clusters named small with a halo beside (never on)
their own points, and a legend of the largest clusters with their sizes.

Labels are placed in display coordinates once the axes are laid out: the columns by a 1-D
pass that keeps each label as near its anchor's height as the others allow; a cluster's label
at the candidate spot around its points that covers fewest points, among those that cover
almost none of its own and no other label (none: the cluster is only in the legend).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .clustering import NOISE
from .palette import NOISE_COLOUR, cluster_colours

LEGEND_ROWS = 30  # clusters listed in the legend, largest first
MAX_COLUMN_LABELS = 30  # headline labels in the columns beside the map
MAX_LABELS = 40  # clusters named small on the map, largest first
MAX_OWN_SHARE = 0.02  # a cluster label may cover at most this share of its own points


@dataclass
class PlacedLabel:
    """A label drawn on the figure: ``kind`` "topic" (in a column) or "cluster" (beside its
    points), its text artist and the indices of the points it names."""

    kind: str
    name: str
    artist: Any
    members: np.ndarray


def cluster_centres(points: np.ndarray, labels: np.ndarray) -> dict[int, tuple[float, float]]:
    """The median point of every cluster (noise excluded), by cluster id."""
    return {
        c: tuple(float(v) for v in np.median(points[labels == c], axis=0))  # type: ignore[misc]
        for c in sorted(int(c) for c in np.unique(labels[labels != NOISE]))
    }


def anchor_of(points: np.ndarray) -> tuple[float, float]:
    """The point nearest the median of ``points``: on the group's own points even when the
    group is a ring or two blobs (its median may lie in empty space)."""
    middle = np.median(points, axis=0)
    near = points[np.argmin(((points - middle) ** 2).sum(axis=1))]
    return float(near[0]), float(near[1])


def headline_groups(
    labels: np.ndarray,
    names: Mapping[int, str],
    topics: Sequence[str | None] | None,
    counts: Mapping[int, int],
) -> list[tuple[str, np.ndarray]]:
    """``(name, point indices)`` of what the columns name, largest first (ties by name): the
    headline topics (each point's ``topics``, noise left out), or without topics the largest
    clusters; at most :data:`MAX_COLUMN_LABELS`."""
    if topics is not None:
        named = np.array([t or "" for t in topics], dtype=object)
        keep = (labels != NOISE) & (named != "")
        groups = [(str(t), np.flatnonzero(keep & (named == t))) for t in set(named[keep])]
    else:
        groups = [(str(names.get(c, c)), np.flatnonzero(labels == c)) for c in counts]
    groups.sort(key=lambda g: (-len(g[1]), g[0]))
    return groups[:MAX_COLUMN_LABELS]


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
    """Draw ``points`` ``(n, 2)`` coloured by ``labels`` ``(n,)`` (:func:`draw_cluster_figure`)
    and write a PNG to ``path``; returns the path written."""
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, _ = draw_cluster_figure(points, labels, names, title=title, topics=topics)
    # laid out and labelled already: without a layout engine savefig draws once, not twice
    # (its hidden first pass cost ~0.5 s of a 100k figure; the same PNG to the byte)
    fig.set_layout_engine(None)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def draw_cluster_figure(
    points: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    *,
    title: str = "Text clusters",
    topics: Sequence[str | None] | None = None,
) -> tuple[Any, list[PlacedLabel]]:
    """The figure and the labels placed on it.

    ``topics``: each point's topic of the headline level (fct_text_clusters.topic_label): the
    title counts them and the columns name them; without it the columns name the largest
    clusters. ``names`` maps a cluster id to its plain-text label; the ``MAX_LABELS``
    largest clusters are named small beside their points when they fit. Noise (-1) is drawn
    small and grey underneath. Point size shrinks with the number of points.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels)
    fig, ax = plt.subplots(figsize=(16, 10))
    noise = labels == NOISE
    ids, counts_array = np.unique(labels[~noise], return_counts=True)
    counts = {int(c): int(n) for c, n in zip(ids, counts_array, strict=True)}
    colour_of = cluster_colours(counts)  # the same colours as the HTML map's
    _scatter(ax, points, labels, colour_of)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ranked = sorted(counts, key=lambda c: (-counts[c], c))
    groups = headline_groups(labels, names, topics, counts)
    named = zip(topics or [], labels, strict=False)
    n_topics = len({t for t, c in named if t and c != NOISE})
    parts = f"{len(counts)} clusters" + (f" in {n_topics} headline topics" if n_topics else "")
    share = noise.mean() if len(labels) else 0.0
    ax.set_title(
        f"{title}: {len(labels):,} texts, {parts}, {share:.0%} noise (grey)",
        fontsize=13,
        loc="left",
    )
    _frame(ax, points)
    _legend(ax, ranked, counts, names, colour_of)
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    display = ax.transData.transform(points) if len(points) else np.zeros((0, 2))
    placed, leaders = _columns(ax, renderer, points, display, groups, bold=topics is not None)
    if topics is not None:
        boxes = [p.artist.get_window_extent(renderer) for p in placed]
        placed += _cluster_labels(
            ax, renderer, display, labels, names, ranked[:MAX_LABELS], boxes, leaders
        )
    return fig, placed


def _frame(ax: Any, points: np.ndarray) -> None:
    """Room for a column of labels on either side of the data."""
    if not len(points):
        return
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    w, h = max(x1 - x0, 1e-9), max(y1 - y0, 1e-9)
    ax.set_xlim(x0 - 0.42 * w, x1 + 0.42 * w)
    ax.set_ylim(y0 - 0.03 * h, y1 + 0.03 * h)


def _columns(
    ax: Any,
    renderer: Any,
    points: np.ndarray,
    display: np.ndarray,
    groups: list[tuple[str, np.ndarray]],
    *,
    bold: bool,
) -> tuple[list[PlacedLabel], np.ndarray]:
    """The groups' names in a column left and right of the data (split by their anchors'
    x, so leader lines stay short), each as near its anchor's height as the column allows,
    with a leader line to the anchor. Also returns points along the leader lines (display
    coordinates, every ~3 px), which no other label may cover."""
    from matplotlib import patheffects

    leaders: list[np.ndarray] = [np.zeros((0, 2))]
    if not groups or not len(points):
        return [], leaders[0]
    inverse = ax.transData.inverted()
    frame = ax.get_window_extent(renderer)
    left_x, right_x = display[:, 0].min() - 10, display[:, 0].max() + 10
    anchors = [anchor_of(points[members]) for _, members in groups]
    anchor_px = ax.transData.transform(np.array(anchors))
    order = np.argsort(anchor_px[:, 0], kind="stable")
    half = (len(groups) + 1) // 2
    sides = {"left": order[:half], "right": order[half:]}
    halo = [patheffects.withStroke(linewidth=3, foreground="white")]
    placed = []
    for side, members in sides.items():
        texts, heights = [], []
        for g in members:
            name, group = groups[g]
            text = ax.text(
                0,
                0,
                f"{textwrap.fill(name, 26)} ({len(group):,})",
                fontsize=10 if bold else 9,
                fontweight="bold" if bold else "normal",
                color="#202020",
                ha="right" if side == "left" else "left",
                va="center",
                path_effects=halo,
                zorder=6,
            )
            texts.append(text)
            heights.append(text.get_window_extent(renderer).height + 6)
        wanted = anchor_px[members, 1]
        ys = _spread(wanted, np.array(heights), frame.y0 + 4, frame.y1 - 4)
        x = left_x if side == "left" else right_x
        for text, g, y in zip(texts, members, ys, strict=True):
            name, group = groups[g]
            text.set_position(inverse.transform((x, y)))
            ax.annotate(
                "",
                xy=anchors[g],
                xytext=inverse.transform((x + (4 if side == "left" else -4), y)),
                arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.7, "shrinkA": 0},
                zorder=5,
            )
            ax.plot(*anchors[g], marker="o", ms=3, color="#333333", zorder=5)
            placed.append(PlacedLabel("topic", name, text, group))
            start, end = np.array([x, y]), anchor_px[g]
            steps = int(np.hypot(*(end - start)) // 3) + 2
            leaders.append(start + np.linspace(0, 1, steps)[:, None] * (end - start))
    return placed, np.concatenate(leaders)


def _spread(wanted: np.ndarray, heights: np.ndarray, low: float, high: float) -> np.ndarray:
    """Centres (display y, up) for boxes of ``heights`` as near ``wanted`` as possible,
    none overlapping, within ``[low, high]`` (when they fit)."""
    order = np.argsort(-wanted, kind="stable")  # top first
    y = np.empty(len(wanted))
    above = high
    for i in order:  # down from the top: under the one above
        y[i] = min(wanted[i], above - heights[i] / 2)
        above = y[i] - heights[i] / 2
    below = low
    for i in order[::-1]:  # then up from the bottom: over the one below
        y[i] = max(y[i], below + heights[i] / 2)
        below = y[i] + heights[i] / 2
    return y


def _cluster_labels(
    ax: Any,
    renderer: Any,
    display: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    clusters: list[int],
    boxes: list[Any],
    leaders: np.ndarray,
) -> list[PlacedLabel]:
    """Each of ``clusters`` named small, with a halo, beside its points: the candidate spot
    around the cluster (its central 90 %) that covers fewest points, among those within the
    axes that cover at most ``MAX_OWN_SHARE`` of its own points, no label (``boxes``) and no
    leader line (``leaders``: points along them)."""
    from matplotlib import patheffects
    from matplotlib.transforms import Bbox

    inverse = ax.transData.inverted()
    frame = ax.get_window_extent(renderer)
    step = max(1, len(display) // 20_000)  # all points are counted on a sample
    sample = display[::step]
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    placed = []
    for c in clusters:
        mine = np.flatnonzero(labels == c)
        own = display[mine]
        (bx0, by0), (bx1, by1) = np.percentile(own, 5, axis=0), np.percentile(own, 95, axis=0)
        mx, my = np.median(own, axis=0)
        text = ax.text(
            0,
            0,
            textwrap.shorten(str(names.get(c, c)), 34),
            fontsize=7,
            color="#303030",
            ha="left",
            va="bottom",
            path_effects=halo,
            zorder=7,
        )
        extent = text.get_window_extent(renderer)
        w, h = extent.width + 2, extent.height + 2
        best = None
        for gap in (3, 10, 22):
            spots = [
                (bx1 + gap, my - h / 2),  # right
                (bx0 - gap - w, my - h / 2),  # left
                (mx - w / 2, by1 + gap),  # above
                (mx - w / 2, by0 - gap - h),  # below
                (bx1 + gap, by1 + gap),
                (bx0 - gap - w, by1 + gap),
                (bx1 + gap, by0 - gap - h),
                (bx0 - gap - w, by0 - gap - h),
            ]
            for x, y in spots:
                box = Bbox.from_bounds(x, y, w, h)
                if not (frame.x0 <= box.x0 and box.x1 <= frame.x1):
                    continue
                if not (frame.y0 <= box.y0 and box.y1 <= frame.y1):
                    continue
                if any(box.overlaps(other) for other in boxes) or _inside(leaders, box).any():
                    continue
                if _inside(own, box).mean() > MAX_OWN_SHARE:
                    continue
                cost = _inside(sample, box).sum() * step + gap
                if best is None or cost < best[0]:
                    best = (cost, box)
            if best is not None:
                break
        if best is None:
            text.remove()  # no free spot beside it: the legend names it
            continue
        box = best[1]
        text.set_position(inverse.transform((box.x0 + 1, box.y0 + 1)))
        boxes.append(box)
        placed.append(PlacedLabel("cluster", str(names.get(c, c)), text, mine))
    return placed


def _inside(xy: np.ndarray, box: Any) -> np.ndarray:
    return (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)


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
        bbox_to_anchor=(1.0, 1.0),
        fontsize=7,
        title="clusters (texts)"
        + (f", largest {LEGEND_ROWS}" if len(ranked) > LEGEND_ROWS else ""),
        title_fontsize=8,
        frameon=False,
    )
