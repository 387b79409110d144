"""A 2-D UMAP projection (FLOAT[2]) of every embedded text.

UMAP is fitted on up to var max_fit_rows texts; the others are projected onto that fit in
batches. The previous build's fit is reused when nothing it depends on changed: new texts
are then only projected (var refit: true, or dbt build --full-refresh, forces a refit).
"""

from text_clustering import (
    PROJECTED_SCHEMA,
    ProjectionSettings,
    project_incremental,
    read_bool,
    read_float,
    read_int,
    read_previous,
    read_str,
)
from text_clustering.config import read_optional_int
from text_clustering.runtime import use_threads


def model(dbt, session):
    dbt.config(materialized="table")
    column = read_str("embedding_column", dbt.config.get("embedding_column"), required=False)
    model_name = read_str("embedding_model", dbt.config.get("embedding_model"))
    settings = ProjectionSettings(
        n_neighbors=read_int("n_neighbors", dbt.config.get("n_neighbors"), minimum=2),
        min_dist=read_float("min_dist", dbt.config.get("min_dist"), minimum=0.0),
        metric=read_str("metric", dbt.config.get("metric")),
        random_state=read_int("random_state", dbt.config.get("random_state")),
        max_fit_rows=read_int("max_fit_rows", dbt.config.get("max_fit_rows"), minimum=2),
        vectors=f"column:{column}" if column else f"model:{model_name}",
    )
    use_threads(read_optional_int("n_threads", dbt.config.get("n_threads"), minimum=1))
    refit = read_bool("refit", dbt.config.get("refit"))
    new_share = read_float("refit_new_share", dbt.config.get("refit_new_share"), minimum=0.0)
    return project_incremental(
        session,
        dbt.ref("int_texts_embedded"),
        read_previous(session, dbt.this, PROJECTED_SCHEMA),
        settings,
        refit=refit,
        refit_new_share=new_share,
    )
