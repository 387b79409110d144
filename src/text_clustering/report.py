"""The figure step of the pipeline: draw the text mart as a PNG and as an interactive HTML map,
and return one row saying what was drawn."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .clustering import NOISE
from .figure import save_cluster_figure
from .html_map import save_cluster_map
from .log import log
from .vectors import to_numpy

FIGURE_SCHEMA = pa.schema(
    [
        ("figure_path", pa.string()),
        ("map_path", pa.string()),
        ("n_texts_drawn", pa.int64()),
        ("n_clusters", pa.int64()),
        ("noise_share", pa.float64()),
    ]
)


def figure_summary(
    texts: pa.Table,
    clusters: pa.Table,
    *,
    path: str | None,
    map_path: str | None = None,
    source: str | None = None,
) -> pa.Table:
    """Draw ``texts`` ``(text_id, text, projection, cluster_label[, topic_label,
    topic_path])`` labelled by ``clusters`` ``(cluster_label, summary_label)`` to ``path``
    (PNG) and ``map_path`` (HTML); ``None`` draws nothing there. Both lead with the headline
    topics (``topic_label``); the map's labels follow ``topic_path`` down to the clusters as
    one zooms in. ``source`` names what was clustered, in the titles.

    Texts without a projection (no words to embed) are not drawn. Returns one row.
    """
    drawn = texts.filter(pc.is_valid(texts["projection"])).sort_by("text_id")
    labels = np.asarray(drawn["cluster_label"].to_numpy(zero_copy_only=False), dtype=np.int32)
    n_clusters = int(np.unique(labels[labels != NOISE]).size)
    noise_share = float((labels == NOISE).mean()) if labels.size else 0.0
    names = dict(
        zip(
            clusters["cluster_label"].to_pylist(),
            clusters["summary_label"].to_pylist(),
            strict=True,
        )
    )
    points = to_numpy(drawn, "projection") if drawn.num_rows else np.zeros((0, 2), np.float32)
    wanted = ("topic_label",) if map_path is None else ("topic_label", "topic_path", "text_id")
    column = {name: drawn[name].to_pylist() for name in wanted if name in drawn.column_names}
    topics, paths = column.get("topic_label"), column.get("topic_path")
    title = f"Texts of {source}" if source else "Text clusters"
    written = mapped = None
    if path is not None:
        figure = save_cluster_figure(points, labels, names, path, topics=topics, title=title)
        written = str(figure.resolve())
        log(f"figure written to {written}")
    if map_path is not None:
        text = drawn["text"].to_pylist() if "text" in drawn.column_names else [""] * len(labels)
        saved = save_cluster_map(
            points,
            labels,
            text,
            names,
            map_path,
            title=title,
            text_ids=column.get("text_id"),
            topic_paths=paths,
            topics=topics,
        )
        mapped = str(saved.resolve())
        log(f"interactive map written to {mapped}")
    row = {
        "figure_path": written,
        "map_path": mapped,
        "n_texts_drawn": drawn.num_rows,
        "n_clusters": n_clusters,
        "noise_share": noise_share,
    }
    return pa.Table.from_pylist([row], schema=FIGURE_SCHEMA)


REPORT_SCHEMA = pa.schema(
    [("report_path", pa.string()), ("n_clusters", pa.int64()), ("n_texts", pa.int64())]
)


def _relative(target: str | None, base: Path) -> str | None:
    if not target:
        return None
    try:
        return os.path.relpath(target, base)
    except ValueError:
        return target


def _cell(value: object) -> str:
    return " ".join(str(value).split()).replace("|", "\\|")


def write_report(
    clusters: pa.Table,
    representatives: pa.Table,
    figures: pa.Table,
    *,
    path: str | None,
    metrics: pa.Table | None = None,
    topics: pa.Table | None = None,
    examples_per_cluster: int = 3,
    max_example_chars: int = 200,
) -> pa.Table:
    """A markdown report of the build at ``path``: totals, the metrics, one table row per
    cluster (size, share, label, who wrote it, keywords), a few representative texts each,
    and the figures.

    ``clusters`` is dim_clusters, ``representatives`` int_cluster_representatives
    ``(cluster_label, representative_rank, text)``, ``figures`` rpt_text_clusters_figure,
    ``metrics`` rpt_cluster_metrics, ``topics`` dim_topics: the report leads with the
    topics of the headline level.
    ``path=None`` writes nothing. Returns one row.
    """
    every = sorted(clusters.to_pylist(), key=lambda r: (r["is_noise"], -r["n_texts"]))
    n_texts = sum(r["n_texts"] for r in every)
    # clusters a person excluded or merged away (seeds/cluster_overrides.csv) are set aside
    aside = [r for r in every if r.get("is_excluded") or r.get("merged_into") is not None]
    rows = [r for r in every if r not in aside]
    real = [r for r in rows if not r["is_noise"]]
    if path is None:
        return pa.Table.from_pylist(
            [{"report_path": None, "n_clusters": len(real), "n_texts": n_texts}],
            schema=REPORT_SCHEMA,
        )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = _header(every, figures, metrics, out.parent)
    lines += _headline_topics(topics)
    lines += ["## Clusters", "", *_cluster_table(rows)]
    if aside:
        lines += ["", "## Set aside by a person (seeds/cluster_overrides.csv)", ""]
        lines += [
            f"- {r['cluster_label']}: {_cell(r['summary_label'])} ({r['n_texts']} texts), "
            + ("excluded" if r.get("is_excluded") else f"merged into {r['merged_into']}")
            for r in aside
        ]
    examples = _examples(representatives, examples_per_cluster, max_example_chars)
    lines += ["", "## Representative texts", ""]
    for r in real:
        lines.append(
            f"### {r['cluster_label']}: {_cell(r['summary_label'])} ({r['n_texts']} texts)"
        )
        lines += [f"- {_cell(text)}" for text in examples.get(r["cluster_label"], [])] + [""]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"report written to {out.resolve()}")
    return pa.Table.from_pylist(
        [{"report_path": str(out.resolve()), "n_clusters": len(real), "n_texts": n_texts}],
        schema=REPORT_SCHEMA,
    )


def _cluster_table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown table row per cluster: size, share, label, who wrote it, keywords."""
    lines = [
        "| cluster | texts | share | label | by | top keywords | status |",
        "|---:|---:|---:|---|---|---|---|",
    ]
    for r in rows:
        status = _cell(r["label_status"])
        if r["label_error"]:
            status += ": " + _cell(r["label_error"])
        keywords = _cell(", ".join((r["top_keywords"] or [])[:5]))
        lines.append(
            f"| {r['cluster_label']} | {r['n_texts']} | {r['share']:.1%} "
            f"| {_cell(r['summary_label'])} | {_cell(r['model_name'])} | {keywords} | {status} |"
        )
    return lines


def _examples(representatives: pa.Table, per_cluster: int, max_chars: int) -> dict[int, list[str]]:
    """The first ``per_cluster`` representatives of every cluster, each cut to ``max_chars``."""
    examples: dict[int, list[str]] = {}
    for r in sorted(
        representatives.to_pylist(), key=lambda r: (r["cluster_label"], r["representative_rank"])
    ):
        bucket = examples.setdefault(r["cluster_label"], [])
        if len(bucket) < per_cluster:
            text = " ".join(str(r["text"] or "").split())
            bucket.append(text if len(text) <= max_chars else text[: max_chars - 1] + "…")
    return examples


def _header(
    rows: list[dict[str, Any]], figures: pa.Table, metrics: pa.Table | None, base: Path
) -> list[str]:
    """The report's title, totals, metrics and figures (paths relative to ``base``)."""
    real = [r for r in rows if not r["is_noise"]]
    noise = next((r for r in rows if r["is_noise"]), {"n_texts": 0, "share": 0.0})
    figure = figures.to_pylist()[0] if figures.num_rows else {}
    models = sorted({r["model_name"] for r in real})
    lines = [
        "# Text clusters: build report",
        "",
        f"Built {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. {sum(r['n_texts'] for r in rows)} "
        f"texts, {len(real)} clusters, {noise['n_texts']} texts ({noise['share']:.1%}) in "
        f"noise (cluster -1). Labels by: {', '.join(models) or 'none'}.",
        "",
    ]
    if metrics is not None and metrics.num_rows:
        values = metrics.to_pylist()[0]
        shown = [f"{k} {v:.3f}" for k, v in values.items() if isinstance(v, float) and v == v]
        lines += [f"Metrics: {', '.join(shown)}.", ""]
    png = _relative(figure.get("figure_path"), base)
    html_map = _relative(figure.get("map_path"), base)
    if png:
        lines += [f"![The clusters]({png})", ""]
    if html_map:
        lines += [f"Interactive map (pan, zoom, hover, search): [{html_map}]({html_map})", ""]
    return lines


def _headline_topics(topics: pa.Table | None) -> list[str]:
    """The topics of the headline level, largest first: size, share, label, keywords."""
    if topics is None:
        return []
    headline = [r for r in topics.to_pylist() if r["is_headline_level"] and not r["is_noise"]]
    if not headline:
        return []
    level = headline[0]["level"]
    levels = 1 + max(r["level"] for r in topics.to_pylist())
    what = "the clusters" if level == 0 else f"level {level} of {levels - 1} above the clusters"
    lines = [
        f"## Topics ({len(headline)} at the headline level: {what})",
        "",
        "| topic | texts | share | label | top keywords |",
        "|---:|---:|---:|---|---|",
    ]
    for r in sorted(headline, key=lambda r: (-r["n_texts"], r["topic_id"])):
        keywords = _cell(", ".join((r["top_keywords"] or [])[:5]))
        lines.append(
            f"| {r['topic_id']} | {r['n_texts']} | {r['share']:.1%} "
            f"| {_cell(r['summary_label'])} | {keywords} |"
        )
    return [*lines, ""]
