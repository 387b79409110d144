"""Stable cluster ids across refits (text_clustering.lineage): matching by members."""

import numpy as np

from text_clustering.lineage import match_clusters, relabel


def changes(match):
    return {(r["old_cluster"], r["new_cluster"], r["change"]) for r in match.lineage}


def test_renumbered_clusters_keep_their_ids():
    previous = np.array([5, 5, 5, 7, 7, 7, -1])
    current = np.array([1, 1, 1, 0, 0, 0, -1])  # the fit numbered them the other way round
    match = match_clusters(previous, current, next_id=8)
    assert match.ids == {1: 5, 0: 7} and match.next_id == 8
    assert changes(match) == {(5, 5, "survived"), (7, 7, "survived")}
    np.testing.assert_array_equal(relabel(current, match.ids), previous)


def test_a_grown_cluster_keeps_its_id_and_a_new_one_gets_a_never_used_id():
    # previous ids 0 and 2 (1 was used by an earlier build: next_id says so)
    previous = np.array([0, 0, 0, 2, 2, -1, -1, -1, -1])
    existed = np.array([True] * 5 + [False] * 4)
    current = np.array([0, 0, 0, 1, 1, 0, 2, 2, 2])
    match = match_clusters(previous, current, existed=existed, next_id=3)
    assert match.ids == {0: 0, 1: 2, 2: 3} and match.next_id == 4
    assert (None, 3, "new") in changes(match)


def test_a_merge_keeps_the_main_part_and_a_split_the_main_piece():
    # 0 (4 texts) and 1 (2 texts) merge; 2 (6 texts) splits 4 / 2
    previous = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 2, 2])
    current = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    match = match_clusters(previous, current, next_id=3)
    assert match.ids == {0: 0, 1: 2, 2: 3}
    assert changes(match) == {
        (0, 0, "survived"),
        (1, 0, "merged_into"),
        (2, 2, "survived"),
        (2, 3, "split_from"),
    }


def test_no_majority_both_ways_means_a_fresh_id_and_the_old_one_disappears():
    previous = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    current = np.array([0, 0, 1, 1, 0, 0, 1, 1])  # each new cluster is half of each old one
    match = match_clusters(previous, current, next_id=2)
    assert sorted(match.ids.values()) == [0, 1]  # 50 % both ways: kept (>= min_share)
    strict = match_clusters(previous, current, next_id=2, min_share=0.6)
    assert sorted(strict.ids.values()) == [2, 3] and strict.next_id == 4
    assert {r["change"] for r in strict.lineage} == {"merged_into"}
    gone = match_clusters(np.array([0, 0, 1, 1]), np.array([0, 0, -1, -1]), next_id=2)
    assert (1, None, "disappeared") in changes(gone)


def test_ids_are_never_reused_over_a_chain_of_refits():
    rng = np.random.default_rng(0)
    labels, next_id, given = rng.integers(0, 5, 200), 5, set(range(5))
    for _ in range(6):
        current = rng.integers(-1, 6, 200)
        match = match_clusters(labels, current, next_id=next_id)
        before = set(np.unique(labels[labels >= 0]).tolist())
        for stable_id in match.ids.values():
            # an id either continues a cluster of the previous build, or was never given
            assert stable_id in before or (stable_id >= next_id and stable_id not in given)
            given.add(stable_id)
        assert len(set(match.ids.values())) == len(match.ids)  # one id per cluster
        labels, next_id = relabel(current, match.ids), match.next_id
