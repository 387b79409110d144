"""One colour per cluster, the same in the PNG and the HTML map, all distinct, none near grey.

:func:`distinct_colours` picks ``k`` colours one at a time, each the candidate farthest (in
CIELAB, where distances follow what eyes see) from every colour already taken and from the
noise grey and the white background (the greedy "glasbey" construction). Candidates are an
RGB grid without near-greys (chroma below :data:`MIN_CHROMA`), so no cluster looks like noise.
Deterministic: the same ``k`` gives the same list; the first colours are the most distinct.

:func:`cluster_colours` gives the colours to clusters by size, largest first (ties by id), so
the clusters a reader sees most get the most distinct colours, in both drawings.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np

NOISE_COLOUR = "#c8c8c8"
BACKGROUND = "#ffffff"
MIN_CHROMA = 25.0  # CIELAB chroma; a grey has ~0
GRID = 24  # candidates per RGB channel


def _lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB in 0..1 ``(n, 3)`` -> CIELAB (D65) ``(n, 3)``."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    matrix = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    )
    xyz = linear @ matrix.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack(
        [116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1
    )


def _hex_to_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


@lru_cache(maxsize=8)
def distinct_colours(k: int) -> tuple[str, ...]:
    """``k`` colours as ``#rrggbb``, greedily as far apart as possible (see the module)."""
    steps = np.linspace(0.0, 1.0, GRID)
    rgb = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = _lab(rgb)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    keep = (chroma >= MIN_CHROMA) & (lab[:, 0] <= 92) & (lab[:, 0] >= 20)
    rgb, lab = rgb[keep], lab[keep]
    fixed = _lab(np.stack([_hex_to_rgb(NOISE_COLOUR), _hex_to_rgb(BACKGROUND)]))
    nearest = np.min(np.linalg.norm(lab[:, None, :] - fixed[None, :, :], axis=2), axis=1)
    out: list[str] = []
    lightness, green_red, blue_yellow = (np.ascontiguousarray(c) for c in lab.T)
    for _ in range(k):
        i = int(np.argmax(nearest))  # ties: the first candidate, so the result is fixed
        out.append("#" + "".join(f"{round(v * 255):02x}" for v in rgb[i]))
        # the Euclidean norm of the difference, summed in norm()'s order, per column (4x
        # faster than norm(lab - lab[i], axis=1) over rows of three)
        d0, d1, d2 = lightness - lab[i, 0], green_red - lab[i, 1], blue_yellow - lab[i, 2]
        np.minimum(nearest, np.sqrt(d0 * d0 + d1 * d1 + d2 * d2), out=nearest)
        nearest[i] = -1.0  # never twice
    return tuple(out)


def cluster_colours(sizes: Mapping[int, int]) -> dict[int, str]:
    """cluster id -> colour, by size (largest first, ties by id); noise (-1) is grey."""
    ranked = sorted((c for c in sizes if c != -1), key=lambda c: (-sizes[c], c))
    colours = distinct_colours(len(ranked))
    return {**{c: colours[i] for i, c in enumerate(ranked)}, -1: NOISE_COLOUR}
