"""Per cluster (noise included): its top c-TF-IDF keywords and n offline keyword labels,
from the texts the clusters were fitted on (so texts added later do not change them).
Kept as is when those texts, their clusters and the settings did not change."""

from text_clustering import keywords_table, read_arrow, read_int, read_str
from text_clustering.reuse import fingerprint, reuse_previous, with_fingerprint


def model(dbt, session):
    dbt.config(materialized="table")
    n = read_int("n", dbt.config.get("n"), minimum=1)
    default_label = read_str("default_label", dbt.config.get("default_label"))
    fitted = dbt.ref("int_texts_projected").filter("projection_source = 'fit'").select("text_id")
    documents = (
        dbt.ref("int_texts_clustered").join(fitted, "text_id").join(dbt.ref("stg_texts"), "text_id")
    )
    documents = documents.select("text_id, cluster_label, text")
    inputs = fingerprint(documents, n, default_label)
    kept = reuse_previous(session, dbt.this, inputs)
    if kept is not None:
        return kept
    table = keywords_table(
        read_arrow(documents.order("text_id").select("cluster_label, text")),
        n=n,
        default_label=default_label,
    )
    return with_fingerprint(table, inputs)
