"""A self-contained interactive HTML map of the clusters: one file, works offline from
``file://``, loads nothing from the network.

The page (``templates/map.html`` and ``templates/map.js``, package data) is inlined with the
data: points as base64 float32, each point's cluster as base64 int32, the texts (cut to fit
the file) and their ids as JSON. Points are drawn with WebGL (a Canvas2D rasteriser without
it); labels come in layers of the topic hierarchy, the headline topics when zoomed out and
finer layers as you zoom in, placed so that no two overlap. Search runs over the texts and
the labels; a topic or cluster can be shown alone or listed with its texts' ids; a box or
lasso selection downloads its ``text_id``s as CSV.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .clustering import NOISE
from .figure import anchor_of
from .log import log
from .palette import NOISE_COLOUR, cluster_colours

MAX_HOVER_CHARS = 300  # a text on the map is cut to this many characters at most
MIN_HOVER_CHARS = 80
TEXT_BUDGET_CHARS = 16_000_000  # all texts together: 100k texts get 160 characters each
MAP_MAX_POINTS = 100_000  # above this many texts the map shows a sample (~21 MB of HTML)


def _template(name: str) -> str:
    return resources.files("text_clustering").joinpath("templates", name).read_text("utf-8")


def hover_chars(n: int) -> int:
    """How many characters of each of ``n`` texts the map keeps (the file stays ~25 MB)."""
    return int(np.clip(TEXT_BUDGET_CHARS // max(n, 1), MIN_HOVER_CHARS, MAX_HOVER_CHARS))


def label_layers(
    points: np.ndarray,
    labels: np.ndarray,
    names: Mapping[int, str],
    sizes: Mapping[int, int],
    topic_paths: Sequence[Sequence[str] | None] | None = None,
    topics: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """The map's label layers, coarse to fine: the headline topics, each level below them,
    and the clusters last. ``topic_paths`` is each point's fct_text_clusters.topic_path
    (labels from the top level down to its cluster), ``topics`` its topic_label (the
    headline level's). A label is ``{label, size, x, y, clusters}``: ``clusters`` are the
    indices of its clusters in ``sorted(cluster ids)``, ``(x, y)`` the point of the topic
    nearest the median of its points (:func:`~text_clustering.figure.anchor_of`: on its own
    points, even for a topic shaped like a ring)."""
    ids = sorted(int(c) for c in np.unique(labels) if c != NOISE)
    index = {c: i for i, c in enumerate(ids)}
    path_of: dict[int, list[str]] = {}
    headline: Counter[int] = Counter()
    if topic_paths is not None:
        for i in range(len(labels)):
            c = int(labels[i])
            if c == NOISE or c in path_of or not topic_paths[i]:
                continue
            path_of[c] = [str(t) for t in topic_paths[i]]  # type: ignore[union-attr]
            if topics is not None and topics[i] in path_of[c]:
                headline[path_of[c].index(str(topics[i]))] += 1
    depth = min((len(p) for p in path_of.values()), default=1)
    first = headline.most_common(1)[0][0] if headline else 0
    levels = list(range(min(first, depth - 1), depth - 1)) if len(path_of) == len(ids) else []
    layers = []
    for j in [*levels, None]:  # j: a position in the paths; None: the clusters themselves
        groups: dict[Any, list[int]] = {}
        for c in ids:
            groups.setdefault(c if j is None else path_of[c][j], []).append(c)
        entries = []
        for key, members in groups.items():
            x, y = anchor_of(points[np.isin(labels, members)])
            entries.append(
                {
                    "label": str(names.get(key, key)) if j is None else key,
                    "size": int(sum(sizes.get(c, 0) for c in members)),
                    "x": round(x, 4),
                    "y": round(y, 4),
                    "clusters": [index[c] for c in members],
                }
            )
        level = 0 if j is None else depth - 1 - j  # the level of dim_topics
        layers.append({"level": level, "labels": entries})
    return layers


def build_map_html(
    points: np.ndarray,
    labels: np.ndarray,
    texts: Sequence[str | None],
    names: Mapping[int, str],
    *,
    title: str = "Text clusters",
    sizes: Mapping[int, int] | None = None,
    text_ids: Sequence[str] | None = None,
    topic_paths: Sequence[Sequence[str] | None] | None = None,
    topics: Sequence[str | None] | None = None,
) -> str:
    """The map as one HTML string: ``points`` ``(n, 2)``, ``labels`` ``(n,)`` (cluster ids,
    -1 noise), the texts (cut to :func:`hover_chars`), their ids (``text_ids``; their
    positions when not given), each cluster's plain-text label, and the topic hierarchy
    (``topic_paths``, ``topics``: see :func:`label_layers`). ``sizes`` gives the clusters'
    true sizes when the points are a sample."""
    labels = np.asarray(labels)
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    n = len(labels)
    counted = sizes or {}
    ids = sorted(int(c) for c in np.unique(labels) if c != NOISE)
    size_of = {c: int(counted.get(c, (labels == c).sum())) for c in ids}
    colour_of = cluster_colours(size_of)  # the same colours as the PNG's
    clusters = [
        {"id": c, "label": str(names.get(c, c)), "size": size_of[c], "colour": colour_of[c]}
        for c in ids
    ]
    noise_size = int(counted.get(NOISE, (labels == NOISE).sum()))
    if noise_size or (labels == NOISE).any():
        clusters.append(
            {
                "id": NOISE,
                "label": f"noise: {names.get(NOISE, 'noise')}",
                "size": noise_size,
                "colour": NOISE_COLOUR,
            }
        )
    position = {c["id"]: i for i, c in enumerate(clusters)}
    cluster_index = np.array([position[int(c)] for c in labels], dtype="<i4")
    chars = hover_chars(n)
    data = {
        "n": n,
        "xy": base64.b64encode(points.astype("<f4").tobytes()).decode("ascii"),
        "c": base64.b64encode(cluster_index.tobytes()).decode("ascii"),
        "ids": [str(t) for t in text_ids] if text_ids is not None else [str(i) for i in range(n)],
        "t": [_cut(t, chars) for t in texts],
        "clusters": clusters,
        "layers": label_layers(points, labels, names, size_of, topic_paths, topics),
    }
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    payload = payload.replace("</", "<\\/").replace("<!--", "<\\!--")  # safe in <script>
    script = _template("map.js")
    return (
        _template("map.html")
        .replace("__TITLE__", html.escape(title))
        .replace("__SCRIPT__", script)
        .replace("__DATA__", payload)
    )


def _cut(text: str | None, limit: int = MAX_HOVER_CHARS) -> str:
    flat = " ".join(str(text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def save_cluster_map(
    points: np.ndarray,
    labels: np.ndarray,
    texts: Sequence[str | None],
    names: Mapping[int, str],
    path: str | Path,
    *,
    title: str = "Text clusters",
    max_points: int = MAP_MAX_POINTS,
    text_ids: Sequence[str] | None = None,
    topic_paths: Sequence[Sequence[str] | None] | None = None,
    topics: Sequence[str | None] | None = None,
) -> Path:
    """Write :func:`build_map_html` to ``path``; returns the path. Above ``max_points``
    texts the map shows an evenly spaced (deterministic) sample of them, says so in its
    title, and keeps the true cluster sizes: a browser stays responsive and the file small."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sizes = None
    n = len(labels)
    if n > max_points:
        ids, counts = np.unique(labels, return_counts=True)
        sizes = {int(c): int(k) for c, k in zip(ids, counts, strict=True)}
        keep = np.linspace(0, n - 1, max_points).round().astype(np.int64)
        points, labels = points[keep], labels[keep]
        texts = [texts[i] for i in keep]
        text_ids = [text_ids[i] for i in keep] if text_ids is not None else [str(i) for i in keep]
        topic_paths = [topic_paths[i] for i in keep] if topic_paths is not None else None
        topics = [topics[i] for i in keep] if topics is not None else None
        title = f"{title} ({max_points:,} of {n:,} texts shown)"
        log(f"interactive map: {n} texts, showing an evenly spaced sample of {max_points}")
    page = build_map_html(
        points,
        labels,
        texts,
        names,
        title=title,
        sizes=sizes,
        text_ids=text_ids,
        topic_paths=topic_paths,
        topics=topics,
    )
    out.write_text(page, encoding="utf-8")
    return out
