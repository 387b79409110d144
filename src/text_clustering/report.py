"""The figure step of the pipeline: draw the text mart, return one row saying what was drawn."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .figure import save_cluster_figure
from .log import log
from .vectors import to_numpy

FIGURE_SCHEMA = pa.schema(
    [
        ("figure_path", pa.string()),
        ("n_texts_drawn", pa.int64()),
        ("n_clusters", pa.int64()),
        ("noise_share", pa.float64()),
    ]
)


def figure_summary(texts: pa.Table, clusters: pa.Table, *, path: str | None) -> pa.Table:
    """Draw ``texts`` ``(text_id, projection, cluster_label)`` labelled by ``clusters``
    ``(cluster_label, summary_label)`` to ``path`` (PNG); ``path=None`` draws nothing.

    Texts without a projection (no words to embed) are not drawn. Returns one row.
    """
    drawn = texts.filter(pc.is_valid(texts["projection"])).sort_by("text_id")
    labels = np.asarray(drawn["cluster_label"].to_numpy(zero_copy_only=False), dtype=np.int32)
    n_clusters = int(np.unique(labels[labels != -1]).size)
    noise_share = float((labels == -1).mean()) if labels.size else 0.0
    written = None
    if path is not None:
        names = dict(
            zip(
                clusters["cluster_label"].to_pylist(),
                clusters["summary_label"].to_pylist(),
                strict=True,
            )
        )
        points = to_numpy(drawn, "projection") if drawn.num_rows else np.zeros((0, 2))
        written = str(save_cluster_figure(points, labels, names, path).resolve())
        log(f"figure written to {written}")
    row = {
        "figure_path": written,
        "n_texts_drawn": drawn.num_rows,
        "n_clusters": n_clusters,
        "noise_share": noise_share,
    }
    return pa.Table.from_pylist([row], schema=FIGURE_SCHEMA)
