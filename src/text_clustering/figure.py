"""A PNG of the 2-D projection: clusters in colour, noise in grey, each label at its centre."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .cluster import NOISE


def cluster_annotations(
    points: np.ndarray, labels: np.ndarray, names: Mapping[int, str], *, width: int = 22
) -> list[tuple[float, float, str]]:
    """``(x, y, text)`` per cluster (noise excluded): the label, wrapped to ``width``
    characters, at the median of the cluster's points."""
    out = []
    for c in sorted(int(c) for c in np.unique(labels[labels != NOISE])):
        x, y = np.median(points[labels == c], axis=0)
        out.append((float(x), float(y), textwrap.fill(str(names.get(c, c)), width=width)))
    return out


def save_cluster_figure(
    points: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    path: str | Path,
    *,
    title: str = "Text clusters",
    dpi: int = 150,
) -> Path:
    """Draw ``points`` ``(n, 2)`` coloured by ``labels`` ``(n,)`` and write a PNG to ``path``.

    ``names`` maps a cluster id to its plain-text label, drawn (wrapped) at the median of the
    cluster's points. Noise (-1) is drawn small and grey underneath. Returns the path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(12, 10))
    size = float(np.clip(40_000 / max(len(points), 1), 0.5, 20))
    noise = labels == NOISE
    if noise.any():
        ax.scatter(*points[noise].T, s=size * 0.6, c="#c8c8c8", linewidths=0, label="noise")
    clusters = sorted(int(c) for c in np.unique(labels[~noise]))
    cmap = plt.get_cmap("tab20")
    for i, c in enumerate(clusters):
        member = labels == c
        ax.scatter(*points[member].T, s=size, color=cmap(i % 20), linewidths=0, alpha=0.8)
    for x, y, text in cluster_annotations(points, labels, names):
        ax.annotate(
            text,
            (x, y),
            ha="center",
            va="center",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#666666", "alpha": 0.85},
        )
    share = noise.mean() if len(labels) else 0.0
    ax.set_title(
        f"{title}: {len(labels)} texts, {len(clusters)} clusters, {share:.0%} noise (grey)"
    )
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
