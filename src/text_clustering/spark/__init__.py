"""The pipeline on Apache Spark: the same fit and assignment as the dbt + DuckDB path, with
the per-text work on executors.

The algorithm is the DuckDB path's, called, never rewritten:

1. **texts** (:mod:`.texts`): ``stg_texts``' ids (the id column as text, or the md5 of the
   text with ``-2``, ``-3`` for repeats) and ``is_embeddable`` (:func:`staged_texts`);
2. **embedding** (:mod:`.embedding`, :func:`embed_missing`): the texts the cache lacks,
   ``mapInArrow`` over partitions sorted by text length, each Python worker loading the
   model once (:func:`~text_clustering.embed.embed_texts`); the cache is parquet, keyed
   exactly as ``int_embedding_cache`` (``md5(model || chr(0) || text)``), so vectors move
   between the two paths;
3. **fit on the driver** (:mod:`.placement`, :func:`fit_sample`): the at most
   ``max_fit_rows`` texts of smallest ``md5(text_id)``, collected;
   :class:`~text_clustering.projection.UMAPProjector` and
   :func:`~text_clustering.steps.clustering.cluster_incremental` on them, as a first dbt
   build does; the fit (vectors, positions, clusters) is broadcast;
4. **placement** (:mod:`.placement`, :func:`place_texts`): every text projected and
   assigned onto the fit, a ``mapInArrow`` over batches of bounded size
   (``UMAPProjector.transform`` and the clusterer
   :func:`~text_clustering.steps.clustering.restore_clusterer` rebuilds once per worker);
5. **labels on the driver** (:mod:`.labels`, :func:`label_fit`): facets, representatives
   (a ``row_number()`` window, the Spark twin of the dbt models' ``QUALIFY``), the topic
   tree, c-TF-IDF keywords, the prompts, the cached LLM step and the naming, all on the
   fitted texts only, by the step functions of the dbt models (their small inputs as
   in-memory DuckDB relations over Arrow); the LLM cache is a parquet folder;
6. **marts** (:mod:`.marts`, :func:`write_marts`): ``fct_text_clusters`` and
   ``dim_clusters`` with the DuckDB marts' columns and types, as parquet, by Spark SQL
   that reads like their dbt SQL.

``python -m text_clustering spark`` runs it (:func:`run`); :func:`local_cluster` starts a
standalone Spark master and workers on 127.0.0.1 (tests, benchmarks).
``python -m text_clustering spark`` runs it (:func:`run`, :mod:`.pipeline`) in a session of
:mod:`.session` (its vars, the master checked first, the status API);
:func:`local_cluster` (:mod:`.local`) starts a standalone Spark master and workers on
127.0.0.1 (tests, benchmarks). :mod:`.arrow` holds what the maps share. Each module imports
pyspark only inside its functions: importing this package needs no Spark.
"""

from __future__ import annotations

from .embedding import embed_missing, own_vectors
from .labels import Labels, label_fit
from .local import LocalCluster, local_cluster
from .marts import write_marts
from .pipeline import run
from .placement import SavedFit, fit_sample, place_batch, place_texts
from .session import DEFAULT_VARS, check_master, session, settings_from
from .texts import check_ids, read_source, source_kind, staged_texts

__all__ = [
    "DEFAULT_VARS",
    "Labels",
    "LocalCluster",
    "SavedFit",
    "check_ids",
    "check_master",
    "embed_missing",
    "fit_sample",
    "label_fit",
    "local_cluster",
    "own_vectors",
    "place_batch",
    "place_texts",
    "read_source",
    "run",
    "session",
    "settings_from",
    "source_kind",
    "staged_texts",
    "write_marts",
]
