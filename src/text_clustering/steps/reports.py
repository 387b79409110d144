"""The report steps: metrics, label quality, the figure and map, the markdown report and the
parquet exports. Each keeps its previous row when its inputs did not change and the files it wrote
are still there (:func:`~text_clustering.steps.reuse.reuse_or_build`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..clustering import NOISE
from ..config import read_bool, read_int, read_str
from ..errors import TextClusteringError
from ..log import log
from ..redact import check_classes, redact_all
from ..vectors import read_arrow, to_numpy
from .embedding import backend_of
from .reuse import reuse_or_build

# Texts whose vectors label quality reads at most (a sample above it): ~150 MB of vectors.
MAX_SCORED_TEXTS = 100_000
LABEL_QUALITY_SCHEMA = pa.schema(
    [
        ("topic_key", pa.string()),
        ("level", pa.int32()),
        ("topic_id", pa.int32()),
        ("n_texts", pa.int64()),
        ("summary_label", pa.string()),
        ("model_name", pa.string()),
        ("label_auc", pa.float64()),
        ("keyword_label", pa.string()),
        ("keyword_label_auc", pa.float64()),
        ("level_label_auc", pa.float64()),
        ("level_label_auc_weighted", pa.float64()),
        ("level_keyword_label_auc", pa.float64()),
        ("level_keyword_label_auc_weighted", pa.float64()),
        ("embedding_model", pa.string()),
        ("skip_reason", pa.string()),
    ]
)


def cluster_metrics(
    connection: Any, this: Any, text_clusters: Any, texts: Any, config: Mapping
) -> pa.Table:
    """rpt_cluster_metrics: one row of numbers about the clustering (vars
    reference_label_column, random_state)."""
    from ..metrics import metrics_table

    reference = read_str(
        "reference_label_column", config.get("reference_label_column"), required=False
    )
    random_state = read_int("random_state", config.get("random_state"))
    projected = text_clusters.join(texts, "text_id").filter("projection is not null")
    projected = projected.select("text_id, projection, cluster_label, reference_label")
    return reuse_or_build(
        connection,
        this,
        [projected, reference, random_state],
        lambda: metrics_table(
            read_arrow(projected),
            reference_column="reference_label" if reference else None,
            random_state=random_state,
        ),
    )


def label_quality(
    connection: Any, this: Any, topics: Any, text_clusters: Any, embedded: Any, config: Mapping
) -> pa.Table:
    """rpt_label_quality: per (level, topic) of dim_topics, how well its label retrieves its
    own texts (:func:`~text_clustering.metrics.label_retrieval_auc`): the label, embedded
    with var embedding_model, ranks the topic's texts against the others by cosine
    similarity to their embeddings (int_texts_embedded); ROC AUC per row and its layer's
    mean and size-weighted mean, for the label shown (``summary_label``: the LLM's or the
    keywords') and for the offline keyword label (made from ``top_keywords``). Noise rows
    are not scored. With var embedding_column, the labels are embedded with var
    embedding_model only when it is a local sentence-transformers model whose vectors have
    the input's dimension; otherwise the scores are null and ``skip_reason`` says why."""
    model_name = read_str("embedding_model", config.get("embedding_model"))
    assert model_name is not None
    own = read_str("embedding_column", config.get("embedding_column"), required=False)
    random_state = read_int("random_state", config.get("random_state"))
    batch_size = read_int("embedding_batch_size", config.get("embedding_batch_size"), minimum=1)
    backend = backend_of(config)
    columns = "topic_key, level, topic_id, parent_topic_id, n_texts, summary_label, model_name"
    topics = topics.select(f"{columns}, top_keywords")
    texts = scored_texts(
        text_clusters.select("text_id, cluster_label").join(
            embedded.select("text_id, embedding"), "text_id"
        )
    )

    def build() -> pa.Table:
        rows = read_arrow(topics.order("level, topic_id")).to_pylist()
        table = read_arrow(texts.order("text_id"))
        clusters = table["cluster_label"].to_numpy(zero_copy_only=False).astype(np.int64)
        vectors = to_numpy(table, "embedding") if table.num_rows else np.zeros((0, 0))
        return label_quality_table(
            rows,
            clusters,
            vectors,
            lambda labels: _embed_labels(
                labels, model_name, own, vectors.shape[1], batch_size, backend
            ),
            model_name=model_name,
            random_state=random_state,
        )

    settings = [model_name, own, random_state, backend]
    return reuse_or_build(connection, this, [topics, texts, *settings], build)


def scored_texts(texts: Any, limit: int | None = None) -> Any:
    """``texts`` (a DuckDB relation with ``text_id``), or above ``limit`` (default
    :data:`MAX_SCORED_TEXTS`) rows a deterministic sample of about ``limit`` of them (by
    ``hash(text_id)``): the AUCs are estimated on it, and no more vectors than that are read
    (1M x 384 floats took gigabytes)."""
    limit = MAX_SCORED_TEXTS if limit is None else limit
    n = int(texts.aggregate("count(*)").fetchall()[0][0])
    if n <= limit:
        return texts
    stride = -(-n // limit)
    log(f"label quality: scored on 1 in {stride} of the {n} texts (by hash of text_id)")
    return texts.filter(f"hash(text_id) % {stride} = 0")


def label_quality_table(
    rows: list[dict[str, Any]],
    clusters: np.ndarray,
    vectors: np.ndarray,
    embed_labels: Any,
    *,
    model_name: str,
    random_state: int = 42,
) -> pa.Table:
    """The rpt_label_quality rows from dim_topics ``rows``, every embedded text's cluster
    ``(n,)`` and embedding ``(n, d)``; ``embed_labels(labels)`` returns their vectors or a
    reason (str) why they cannot be embedded."""
    from ..keywords import keyword_labels
    from ..metrics import label_retrieval_auc, layer_means

    for r in rows:
        r["keyword_label"] = next(iter(keyword_labels(r["top_keywords"] or [], n=1)), None)
    scored = [r for r in rows if r["topic_id"] != NOISE]
    wanted = sorted({t for r in scored for t in (r["summary_label"], r["keyword_label"]) if t})
    found = embed_labels(wanted) if wanted and len(clusters) else "no label or no text to score"
    reason = found if isinstance(found, str) else None
    label_vectors = found if not isinstance(found, str) else np.zeros((0, 0))
    if reason:
        log(f"label quality: not scored: {reason}")
    topic_of = _topic_paths(rows, clusters)
    for level in sorted({r["level"] for r in rows}):
        layer = [r for r in scored if r["level"] == level]
        for column, label in (
            ("label_auc", "summary_label"),
            ("keyword_label_auc", "keyword_label"),
        ):
            auc = np.full(len(layer), np.nan)
            if reason is None and layer:
                index = {t: i for i, t in enumerate(wanted)}
                have = [i for i, r in enumerate(layer) if r[label]]
                auc[have] = label_retrieval_auc(
                    vectors,
                    topic_of[level],
                    label_vectors[[index[layer[i][label]] for i in have]],
                    np.array([layer[i]["topic_id"] for i in have]),
                    random_state=random_state,
                )
            for r, value in zip(layer, auc.tolist(), strict=True):
                r[column] = None if np.isnan(value) else value
            mean, weighted = layer_means(auc, np.array([r["n_texts"] for r in layer]))
            for r in rows:
                if r["level"] == level:
                    r[f"level_{column}"], r[f"level_{column}_weighted"] = mean, weighted
    for r in rows:
        r["embedding_model"] = None if reason else model_name
        r["skip_reason"] = reason
    means = {r["level"]: (r["level_label_auc"], r["level_label_auc_weighted"]) for r in rows}
    for level, (mean, weighted) in sorted(means.items()):
        if mean is not None:
            log(f"label quality: level {level}: label AUC {mean:.3f} (weighted {weighted:.3f})")
    return pa.Table.from_pylist(rows, schema=LABEL_QUALITY_SCHEMA)


def _topic_paths(rows: list[dict[str, Any]], clusters: np.ndarray) -> dict[int, np.ndarray]:
    """Per level, every text's topic (from its cluster and the parents of ``rows``)."""
    parent = {(r["level"], r["topic_id"]): r["parent_topic_id"] for r in rows}
    out = {0: clusters}
    ids = np.unique(clusters)
    current = {int(c): int(c) for c in ids}
    for level in range(1, 1 + max((r["level"] for r in rows), default=0)):
        current = {c: _parent(parent, level - 1, t) for c, t in current.items()}
        out[level] = np.array([current[c] for c in ids])[np.searchsorted(ids, clusters)]
    return out


def _parent(parent: Mapping[tuple[int, int], int | None], level: int, topic: int) -> int:
    up = None if topic == NOISE else parent.get((level, topic))
    return NOISE if up is None else int(up)


def _embed_labels(
    labels: list[str],
    model_name: str,
    own: str | None,
    dim: int,
    batch_size: int,
    backend: str = "torch",
) -> np.ndarray | str:
    """The labels' vectors with var embedding_model, or why they cannot be had."""
    from ..embed import OPENAI_PREFIX, embed

    if own and model_name.startswith(OPENAI_PREFIX):
        return (
            f"the texts bring their own vectors (var embedding_column={own!r}) and var "
            f"embedding_model={model_name!r} is not a local sentence-transformers model: set "
            "var embedding_model to the model that made the vectors to score the labels"
        )
    try:
        vectors, ok = embed(labels, model_name=model_name, batch_size=batch_size, backend=backend)
    except TextClusteringError as exc:
        return f"the labels could not be embedded with {model_name!r}: {exc}"
    if ok is not None and not ok.all():
        return f"the labels could not all be embedded with {model_name!r}"
    if vectors.shape[1] != dim:
        return (
            f"var embedding_model={model_name!r} gives {vectors.shape[1]} dimensions, the "
            f"texts' vectors {dim}: set var embedding_model to the model that made them"
        )
    return vectors


def cluster_figures(connection: Any, this: Any, text_clusters: Any, config: Mapping) -> pa.Table:
    """rpt_text_clusters_figure: the PNG (var figure_path) and the HTML map (var map_path)
    of fct_text_clusters (which carries each cluster's label and topic path) when var savefig
    is true, without the clusters a person excluded (seeds/cluster_overrides.csv), titled
    with what was clustered (var source_path's file name or var source_table). The map
    shows the texts with the private data of var redact replaced (a file to share)."""
    from ..report import figure_summary

    private = check_classes(config.get("redact"))
    savefig = read_bool("savefig", config.get("savefig"))
    figure_path = read_str("figure_path", config.get("figure_path"))
    map_path = read_str("map_path", config.get("map_path"), required=False)
    source = read_str("source_path", config.get("source_path"), required=False) or read_str(
        "source_table", config.get("source_table"), required=False
    )
    shown = text_clusters.filter("not is_excluded")
    columns = "text_id, projection, cluster_label, topic_label"
    drawn_map = bool(savefig and map_path)
    # the texts and topic paths only for the map: the PNG draws neither (at 1M texts,
    # reading and redacting them took gigabytes and half the step's time)
    texts = shown.select(f"{columns}, text, topic_path" if drawn_map else columns)
    labels = shown.select("cluster_label, summary_label").distinct()
    return reuse_or_build(
        connection,
        this,
        [texts, labels, savefig, figure_path, map_path, list(private), source],
        lambda: figure_summary(
            redacted(read_arrow(texts), private) if drawn_map else read_arrow(texts),
            read_arrow(labels.order("cluster_label")),
            path=figure_path if savefig else None,
            map_path=map_path if savefig else None,
            source=Path(source).name if source and "/" in source else source,
        ),
        files=[figure_path, map_path] if savefig else [],
    )


def build_report(
    connection: Any,
    this: Any,
    clusters: Any,
    topics: Any,
    representatives: Any,
    figure: Any,
    metrics: Any,
    config: Mapping,
) -> pa.Table:
    """rpt_text_clusters_report: the markdown report at var report_path, leading with the
    topics of the headline level (``topics``: dim_topics); the representatives it quotes
    with the private data of var redact replaced (a file to share)."""
    from ..report import write_report

    private = check_classes(config.get("redact"))
    report_path = read_str("report_path", config.get("report_path"), required=False)
    representatives = representatives.select("cluster_label, representative_rank, text")
    return reuse_or_build(
        connection,
        this,
        [clusters, topics, representatives, figure, metrics, report_path, list(private)],
        lambda: write_report(
            read_arrow(clusters),
            redacted(read_arrow(representatives), private),
            read_arrow(figure),
            path=report_path,
            metrics=read_arrow(metrics),
            topics=read_arrow(topics),
        ),
        files=[report_path],
    )


def redacted(table: pa.Table, classes: tuple[str, ...]) -> pa.Table:
    """``table`` with its ``text`` column redacted (:func:`~text_clustering.redact.redact`)."""
    if not classes:
        return table
    index = table.schema.get_field_index("text")
    texts = redact_all(table["text"].to_pylist(), classes)
    return table.set_column(index, "text", pa.array(texts, pa.string()))


def export_marts(
    connection: Any, this: Any, text_clusters: Any, clusters: Any, config: Mapping
) -> pa.Table:
    """rpt_parquet_exports: the marts as parquet files in var export_dir (none when null)."""
    from ..export import export_parquet

    export_dir = read_str("export_dir", config.get("export_dir"), required=False)
    names = ("fct_text_clusters", "dim_clusters")
    files = [f"{export_dir}/{name}.parquet" for name in names] if export_dir else []

    def build() -> pa.Table:
        tables = {
            "fct_text_clusters": read_arrow(text_clusters.order("text_id")),
            "dim_clusters": read_arrow(clusters.order("cluster_label")),
        }
        return export_parquet(tables, export_dir)

    return reuse_or_build(
        connection, this, [text_clusters, clusters, export_dir], build, files=files
    )
