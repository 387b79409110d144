"""A person's decisions in seeds/cluster_overrides.csv, end to end: each kind of override
(rename a cluster and a topic, merge, move a text, exclude) applied by `dbt build`, then
still holding after 30 % new texts force a refit (the overrides name stable ids); a row
that cannot mean anything stops the build naming the row; a row that no longer matches
the build is kept, warned about and not applied."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from conftest import REPO
from dbt_helpers import ok, project_with_overrides, query, run_dbt

HEADER = "override_id,action,level,cluster_id,into_cluster_id,text_id,label,note\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A first build of 460 demo texts (offline labels), no overrides."""
    work = tmp_path_factory.mktemp("overrides")
    demo = pq.read_table(REPO / "data" / "debian_packages.parquet").slice(0, 600)
    pq.write_table(demo.slice(0, 460), work / "texts.parquet")
    pq.write_table(demo, work / "more_texts.parquet")
    project_with_overrides(work, HEADER)
    database = work / "overrides.duckdb"
    ok(run_dbt(work, database, "build", vars=settings(work, "texts.parquet")))
    return work, database


def test_without_overrides_the_marts_are_the_clustering_s(built):
    """The seed is empty by default: every text keeps the cluster it was fitted or assigned
    to, no label is a person's, nothing is excluded (so `make eval` scores the same)."""
    _, database = built
    assert query(
        database,
        "select count(*) filter (cluster_label <> fitted_cluster_label or is_excluded "
        "or model_name = 'human') from fct_text_clusters",
    ) == [(0,)]
    assert query(
        database,
        "select count(*) from int_texts_clustered as c join fct_text_clusters as f "
        "using (text_id) where c.cluster_label <> f.cluster_label",
    ) == [(0,)]
    assert query(database, "select count(*) from int_cluster_overrides") == [(0,)]


def settings(work, source):
    return {"source_path": str(work / source), "id_column": "package", "savefig": False}


def decisions(database, survivors):
    """Clusters a..e (largest first) and the largest level-1 topic among those a refit
    continues (``survivors``: a database the refit was made in, without overrides), a text
    of e, and a cluster the refit ends (f)."""
    go_on = {c for (c,) in query(survivors, "select topic_id from dim_topics where level = 0")}
    topics_on = {t for (t,) in query(survivors, "select topic_id from dim_topics where level = 1")}
    largest = query(
        database,
        "select cluster_label from dim_clusters where not is_noise "
        "order by n_texts desc, cluster_label",
    )
    clusters = [c for (c,) in largest if c in go_on][:5] + [
        c for (c,) in largest if c not in go_on
    ][:1]
    (text,) = query(
        database,
        f"select min(text_id) from fct_text_clusters where cluster_label = {clusters[4]}",
    )[0]
    topic = next(
        t
        for (t,) in query(
            database,
            "select topic_id from dim_topics where level = 1 and not is_noise "
            "order by n_texts desc, topic_id",
        )
        if t in topics_on
    )
    return clusters, text, topic


def seed(clusters, text, topic):
    a, b, c, d, _, f = clusters
    return HEADER + "\n".join(
        [
            f"1,rename,,{a},,,Pinned by a person,tested",
            f"2,merge,,{b},{c},,,",
            f"3,move,,,{a},{text},,",
            f"4,exclude,,{d},,,,",
            f"5,rename,1,{topic},,,A pinned topic,",
            f"6,rename,,{f},,,Ended by the refit,",
        ]
    )


def holds(database, clusters, text, topic) -> set[int]:
    """The overrides applied in this build, each checked in the marts."""
    a, b, c, d, *_ = clusters
    applied = {
        i
        for (i,) in query(
            database, "select override_id from int_cluster_overrides where status = 'applied'"
        )
    }
    row = dict(
        query(database, "select cluster_label, (summary_label, model_name) from dim_clusters")
    )
    if 1 in applied:
        assert row[a] == ("Pinned by a person", "human")
        assert query(
            database,
            f"select distinct summary_label from fct_text_clusters where cluster_label = {a}",
        ) == [("Pinned by a person",)]
    if 2 in applied:
        assert query(
            database,
            f"select count(*) from fct_text_clusters where cluster_label = {b}",
        ) == [(0,)]
        moved = query(
            database,
            f"select distinct cluster_label from fct_text_clusters "
            f"where fitted_cluster_label = {b} and text_id <> '{text}'",
        )
        assert moved == [(c,)]
        assert query(
            database, f"select merged_into from dim_clusters where cluster_label = {b}"
        ) == [(c,)]
    if 3 in applied:
        assert query(
            database, f"select cluster_label from fct_text_clusters where text_id = '{text}'"
        ) == [(a,)]
    if 4 in applied:
        assert query(
            database,
            f"select distinct is_excluded from fct_text_clusters where cluster_label = {d}",
        ) == [(True,)]
        # no topic above it: noise's at every level
        assert query(
            database,
            "select distinct t.topic_id from fct_text_topics as t join fct_text_clusters as c "
            f"using (text_id) where c.cluster_label = {d} and t.level > 0",
        ) == [(-1,)]
    if 5 in applied:
        assert query(
            database,
            f"select summary_label, model_name from dim_topics where level = 1 "
            f"and topic_id = {topic}",
        ) == [("A pinned topic", "human")]
    return applied


def test_every_kind_of_override_holds_through_a_refit(built, tmp_path):
    work, first = built
    probe = tmp_path / "probe.duckdb"  # the refit without overrides: which ids go on
    shutil.copy(first, probe)
    ok(run_dbt(work, probe, "build", vars=settings(work, "more_texts.parquet")))
    database = tmp_path / "refit.duckdb"
    shutil.copy(first, database)
    clusters, text, topic = decisions(database, probe)
    project_with_overrides(work, seed(clusters, text, topic))
    ok(run_dbt(work, database, "build", vars=settings(work, "texts.parquet")))
    assert holds(database, clusters, text, topic) == {1, 2, 3, 4, 5, 6}

    report = (work / "output" / "report.md").read_text()
    assert f"- {clusters[3]}: " in report.split("## Set aside by a person")[1]  # excluded

    result = ok(run_dbt(work, database, "build", vars=settings(work, "more_texts.parquet")))
    assert "refit matched to the previous build" in result.stdout + result.stderr
    assert holds(database, clusters, text, topic) == {1, 2, 3, 4, 5}
    # the one whose cluster the refit ended is kept, warned about, and says why
    assert query(
        database,
        "select override_id, stale_reason from int_cluster_overrides where status = 'stale'",
    ) == [
        (
            6,
            f"cluster {clusters[5]} is not in this build (a refit ended it: "
            "fct_cluster_lineage tells what became of it)",
        )
    ]
    assert "Warning in test warn_stale_overrides" in result.stdout
    assert query(
        database,
        f"select count(*) from fct_cluster_lineage where old_cluster = {clusters[5]} "
        "and change = 'survived'",
    ) == [(0,)]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ["1,merge,,{a},{b},,,", "2,merge,,{b},{a},,,"],
            "(merge): the merges form a cycle",
        ),
        (
            ["1,rename,,{a},,,One,", "2,rename,,{a},,,Two,"],
            "override_id 2 (rename): this row and override_id 1 rename the same",
        ),
        (["7,split,,{a},,,,"], "override_id 7 (split): action 'split' is not one of"),
        (["1,rename,,999,,,Name,"], "override_id 1 (rename): no build ever had cluster 999"),
        (["1,rename,,{a},,,,"], "override_id 1 (rename): label is empty"),
        (["1,exclude,,-1,,,,"], "override_id 1 (exclude): cluster_id -1 is noise"),
        (["1,merge,2,{a},{b},,,"], "override_id 1 (merge): merge applies to clusters only"),
        (
            ["1,move,,,{a},{text},,", "2,move,,,{b},{text},,"],
            "this row and override_id 1 move the same text",
        ),
    ],
)
def test_an_override_that_cannot_mean_anything_stops_the_build_naming_its_row(
    built, tmp_path, rows, message
):
    work, first = built
    database = tmp_path / "bad.duckdb"
    shutil.copy(first, database)
    (a, b, *_), text, _ = decisions(database, database)
    project_with_overrides(work, HEADER + "\n".join(rows).format(a=a, b=b, text=text))
    result = run_dbt(
        work,
        database,
        "build",
        "--select",  # the seed and its checks: the rest of the build is in the database
        "cluster_overrides stg_seeds__cluster_overrides int_cluster_overrides",
        vars=settings(work, "texts.parquet"),
    )
    assert result.returncode != 0
    assert "Error in model int_cluster_overrides" in result.stdout
    assert "seeds/cluster_overrides.csv, override_id " in result.stdout
    assert message in result.stdout


def test_an_override_that_no_longer_matches_is_warned_about_not_dropped(built, tmp_path):
    work, first = built
    database = tmp_path / "stale.duckdb"
    shutil.copy(first, database)
    (a, *_), _, _ = decisions(database, database)
    project_with_overrides(
        work, HEADER + f"1,move,,,{a},no-such-package,,\n2,rename,,{a},,,Kept,\n"
    )
    result = ok(run_dbt(work, database, "build", vars=settings(work, "texts.parquet")))
    assert "Warning in test warn_stale_overrides" in result.stdout
    assert query(
        database, "select override_id, status, stale_reason from int_cluster_overrides order by 1"
    ) == [
        (1, "stale", "text no-such-package is not in the input (stg_texts)"),
        (2, "applied", None),
    ]
    assert query(database, f"select summary_label from dim_clusters where cluster_label = {a}") == [
        ("Kept",)
    ]
