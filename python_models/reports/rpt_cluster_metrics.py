"""One row of numbers that say whether the clustering is any good (see metrics.py).
Kept as is when its inputs did not change since the last build."""

from text_clustering import read_arrow, read_int, read_str
from text_clustering.metrics import metrics_table
from text_clustering.reuse import fingerprint, reuse_previous, with_fingerprint


def model(dbt, session):
    dbt.config(materialized="table")
    reference = read_str(
        "reference_label_column", dbt.config.get("reference_label_column"), required=False
    )
    random_state = read_int("random_state", dbt.config.get("random_state"))
    texts = dbt.ref("fct_text_clusters").join(dbt.ref("stg_texts"), "text_id")
    projected = texts.filter("projection is not null").select(
        "text_id, projection, cluster_label, reference_label"
    )
    inputs = fingerprint(projected, reference, random_state)
    kept = reuse_previous(session, dbt.this, inputs)
    if kept is not None:
        return kept
    table = metrics_table(
        read_arrow(projected),
        reference_column="reference_label" if reference else None,
        random_state=random_state,
    )
    return with_fingerprint(table, inputs)
