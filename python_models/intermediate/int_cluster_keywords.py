"""Per cluster (noise included): its top c-TF-IDF keywords and n offline keyword labels,
from the texts the clusters were fitted on (so texts added later do not change them)."""

from text_clustering import keywords_table, read_arrow, read_int, read_str


def model(dbt, session):
    dbt.config(materialized="table")
    fitted = dbt.ref("int_texts_projected").filter("projection_source = 'fit'").select("text_id")
    documents = (
        dbt.ref("int_texts_clustered").join(fitted, "text_id").join(dbt.ref("stg_texts"), "text_id")
    )
    return keywords_table(
        read_arrow(documents.order("text_id").select("cluster_label, text")),
        n=read_int("n", dbt.config.get("n"), minimum=1),
        default_label=read_str("default_label", dbt.config.get("default_label")),
    )
