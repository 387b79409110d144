"""Rebuilds as a daily job runs them: unchanged input, a few new texts, a forced refit, and
the clustering options (HDBSCAN, noise policy) end to end through `dbt build`.

The corpus is ~600 real Debian descriptions; var max_fit_rows=400 makes every build fit on
a sample and project the rest, as a large table does.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import ok, query, run_dbt

HELD_OUT = 12  # texts added by the second build: 2 % of the corpus


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    demo = pq.read_table(REPO / "data" / "debian_packages.parquet").slice(0, 600)
    folder = tmp_path_factory.mktemp("sources")
    full, part = folder / "full.parquet", folder / "part.parquet"
    pq.write_table(demo, full)
    pq.write_table(demo.slice(0, demo.num_rows - HELD_OUT), part)
    return part, full


def build(work, database, source, **variables):
    settings = {
        "source_path": str(source),
        "id_column": "package",
        "max_fit_rows": 400,
        "reference_label_column": "section",
        **variables,
    }
    result = ok(run_dbt(work, database, "build", vars=settings))
    return result.stdout + result.stderr


def snapshot(database):
    return {
        "projected": query(
            database,
            "select text_id, projection, projection_source, fit_id "
            "from int_texts_projected order by text_id",
        ),
        "clustered": query(
            database, "select text_id, cluster_label from int_texts_clustered order by text_id"
        ),
        "labels": query(
            database, "select cluster_label, summary_label from dim_clusters order by 1"
        ),
        "topics": query(
            database,
            "select topic_key, parent_topic_id, summary_label, is_headline_level "
            "from dim_topics order by level, topic_id",
        ),
        "text_topics": query(
            database, "select text_id, level, topic_id from fct_text_topics order by 1, 2"
        ),
        "tree_fit": query(database, "select distinct input_fingerprint from int_topic_tree"),
        "lineage": query(
            database,
            "select fit_key, old_cluster, new_cluster, change, is_new_id, n_texts, recorded_at "
            "from fct_cluster_lineage order by recorded_at, lineage_key",
        ),
    }


@pytest.fixture(scope="module")
def builds(sources, tmp_path_factory):
    part, full = sources
    work = tmp_path_factory.mktemp("incremental")
    database = work / "daily.duckdb"
    logs, states = [], []
    for source, extra in ((part, {}), (part, {}), (full, {}), (full, {"refit": True})):
        logs.append(build(work, database, source, **extra))
        states.append(snapshot(database))
    return logs, states


def test_first_build_fits_a_sample_and_projects_the_rest(builds):
    logs, states = builds
    sources = [row[2] for row in states[0]["projected"]]
    assert sources.count("fit") == 400 and sources.count("transform") == 600 - HELD_OUT - 400
    assert "fitting UMAP (first build)" in logs[0]


def test_unchanged_rebuild_reuses_everything(builds):
    logs, states = builds
    assert states[1] == states[0]
    assert "embeddings: 0 new or changed text(s) to add" in logs[1]
    assert "reusing the previous fit" in logs[1] and "fitting UMAP" not in logs[1]
    for model in (
        "int_topic_tree",
        "int_topic_keywords",
        "rpt_cluster_metrics",
        "rpt_label_quality",
        "rpt_text_clusters_figure",
        "rpt_text_clusters_report",
    ):
        assert f"{model}: inputs unchanged since the last build" in logs[1]


def test_new_texts_are_only_projected_and_assigned(builds):
    logs, states = builds
    before = {row[0]: row for row in states[1]["projected"]}
    after = {row[0]: row for row in states[2]["projected"]}
    new = set(after) - set(before)
    assert len(new) == HELD_OUT
    assert {after[t][2] for t in new} == {"new"}
    assert all(after[t] == before[t] for t in before)  # nobody else moved
    labels_before = dict(states[1]["clustered"])
    labels_after = dict(states[2]["clustered"])
    assert all(labels_after[t] == labels_before[t] for t in labels_before)
    assert states[2]["labels"] == states[1]["labels"]  # same clusters, same labels
    assert f"{HELD_OUT} new or changed text(s) to project" in logs[2]
    assert "fitting UMAP" not in logs[2]
    # keywords come from the fitted texts only: new texts leave them (and the prompts) as is
    assert "int_topic_keywords: inputs unchanged since the last build" in logs[2]
    # the layers are kept, and every new text inherits its cluster's path
    assert "int_topic_tree: inputs unchanged since the last build" in logs[2]
    assert states[2]["topics"] == states[1]["topics"]
    paths: dict[str, list] = {}
    for text_id, level, topic in states[2]["text_topics"]:
        paths.setdefault(text_id, []).append((level, topic))
    path_of = {labels_after[t]: paths[t] for t in labels_before}
    assert all(paths[t] == path_of[labels_after[t]] for t in new if labels_after[t] in path_of)
    assert len(paths) == len(after)  # one path per text


def test_a_refit_keeps_the_ids_of_the_clusters_it_continues(builds):
    logs, states = builds
    before, after = dict(states[2]["clustered"]), dict(states[3]["clustered"])
    lineage = states[3]["lineage"]
    assert len({row[0] for row in lineage}) == 2  # the first fit (all new) and the refit
    last = max(row[6] for row in lineage)
    refit = [row for row in lineage if row[6] == last]  # the refit's rows
    survived = {row[1] for row in refit if row[3] == "survived"}
    assert survived and "refit matched to the previous build" in logs[3]
    for cluster in survived:  # most of its texts are still together, under the same id
        members = {t for t, c in before.items() if c == cluster}
        assert sum(after[t] == cluster for t in members) >= len(members) / 2
    # every new cluster id was never used before
    fresh = {row[2] for row in refit if row[4]}
    assert not fresh & set(before.values())
    # each new cluster is explained: a survivor, a piece or merge, or new
    explained = {row[2] for row in refit if row[2] is not None}
    assert explained == {c for c in after.values() if c != -1}


def test_var_refit_fits_again(builds):
    logs, states = builds
    assert "fitting UMAP (var refit is true)" in logs[3]
    assert "new" not in {row[2] for row in states[3]["projected"]}
    # a refit recomputes the layers (the fitted texts changed)
    assert states[3]["tree_fit"] != states[2]["tree_fit"]
    assert "int_topic_tree: inputs unchanged" not in logs[3]


def test_the_hierarchy_has_layers_above_the_clusters_and_one_headline(builds):
    _, states = builds
    topics = states[0]["topics"]
    levels = sorted({int(key.split(":")[0]) for key, *_ in topics})
    assert levels == list(range(len(levels))) and len(levels) >= 2
    headline = {key.split(":")[0] for key, _, _, is_headline in topics if is_headline}
    assert len(headline) == 1
    top = [key for key, *_ in topics if key.startswith(f"{levels[-1]}:")]
    assert 1 <= len([key for key in top if not key.endswith(":-1")]) <= 12  # max_top_topics


def test_hdbscan_and_the_noise_policy(sources, tmp_path):
    _, full = sources
    database = tmp_path / "options.duckdb"
    build(tmp_path, database, full, clustering_algorithm="hdbscan", savefig=False)
    noise_kept = query(database, "select avg((cluster_label = -1)::int) from int_texts_clustered")
    methods = {row[0] for row in query(database, "select assigned_by from int_texts_clustered")}
    assert "hdbscan" in methods and "nearest_fit" in methods
    build(
        tmp_path,
        database,
        full,
        clustering_algorithm="hdbscan",
        noise_policy="nearest",
        noise_max_distance=None,
        savefig=False,
    )
    noise_moved = query(database, "select avg((cluster_label = -1)::int) from int_texts_clustered")
    assert noise_kept[0][0] > 0 and noise_moved[0][0] == 0
    assert (
        query(
            database, "select count(*) from int_texts_clustered where assigned_by = 'noise_policy'"
        )[0][0]
        > 0
    )


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"clustering_algorithm": "kmeans"}, "`clustering_algorithm` must be one of"),
        ({"noise_policy": "drop"}, "`noise_policy` must be one of"),
        ({"max_fit_rows": 1}, "`max_fit_rows` must be an integer >= 2"),
    ],
)
def test_bad_clustering_vars_are_named(sources, tmp_path, variables, message):
    part, _ = sources
    result = run_dbt(
        tmp_path,
        tmp_path / "bad.duckdb",
        "build",
        vars={"source_path": str(part), "savefig": False, **variables},
    )
    assert result.returncode != 0 and message in result.stdout


def test_projected_texts_keep_their_own_cluster_sizes(builds):
    """Every cluster has fitted texts, so keywords, representatives and labels exist for it."""
    _, states = builds
    fitted = {row[0] for row in states[0]["projected"] if row[2] == "fit"}
    clusters = {}
    for text_id, label in states[0]["clustered"]:
        clusters.setdefault(label, set()).add(text_id in fitted)
    assert all(True in flags for label, flags in clusters.items() if label != -1)
