import numpy as np
import pyarrow as pa

from text_clustering import save_cluster_figure, to_arrow
from text_clustering.figure import cluster_annotations
from text_clustering.report import figure_summary

POINTS = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [5, 5]], dtype=np.float32)
LABELS = np.array([0, 0, 0, 1, 1, -1], dtype=np.int32)


def test_annotations_sit_at_cluster_medians_as_wrapped_plain_text():
    names = {0: "a rather long label about text editors", 1: "games"}
    notes = cluster_annotations(POINTS, LABELS, names, width=20)
    assert [(x, y) for x, y, _ in notes] == [(0.0, 0.0), (10.0, 10.5)]
    assert notes[0][2] == "a rather long label\nabout text editors"
    assert notes[1][2] == "games"


def test_png_is_written(tmp_path):
    path = save_cluster_figure(POINTS, LABELS, {0: "x", 1: "y"}, tmp_path / "sub" / "f.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_figure_summary_skips_texts_without_projection(tmp_path):
    texts = pa.table(
        {
            "text_id": ["a", "b", "c", "d", "e", "f", "g"],
            "projection": pa.concat_arrays([to_arrow(POINTS), pa.nulls(1, to_arrow(POINTS).type)]),
            "cluster_label": pa.array([0, 0, 0, 1, 1, -1, -1], pa.int32()),
        }
    )
    clusters = pa.table({"cluster_label": [-1, 0, 1], "summary_label": ["Other", "x", "y"]})
    row = figure_summary(texts, clusters, path=str(tmp_path / "f.png")).to_pylist()[0]
    assert row["n_texts_drawn"] == 6 and row["n_clusters"] == 2
    assert abs(row["noise_share"] - 1 / 6) < 1e-9
    assert row["figure_path"].endswith("f.png") and (tmp_path / "f.png").exists()
    skipped = figure_summary(texts, clusters, path=None).to_pylist()[0]
    assert skipped["figure_path"] is None


def test_labels_at_the_same_centre_are_moved_apart():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.text import Text

    from text_clustering.figure import place_labels

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.set_xlim(-10, 10)
    ax.set_ylim(-10, 10)
    renderer = fig.canvas.get_renderer()
    notes = [(0.0, 0.0, f"label number {i}") for i in range(6)]
    texts = place_labels(ax, notes, [6, 5, 4, 3, 2, 1], renderer)
    for t in texts:
        t.update_positions(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in texts]
    assert len(boxes) == 6
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert texts[0].xyann == (0, 0)  # the largest cluster keeps its centre
    plt.close(fig)


def test_100k_points_and_many_clusters_make_a_png(tmp_path):
    rng = np.random.default_rng(0)
    points = rng.normal(size=(100_000, 2)).astype(np.float32)
    labels = rng.integers(-1, 40, size=100_000).astype(np.int32)
    path = save_cluster_figure(
        points, labels, {i: f"cluster {i}" for i in range(40)}, tmp_path / "f.png"
    )
    assert path.stat().st_size > 50_000


def test_every_cluster_gets_its_own_colour_far_from_noise_grey():
    from text_clustering.palette import NOISE_COLOUR, _hex_to_rgb, _lab, distinct_colours

    colours = distinct_colours(300)
    assert len(set(colours)) == 300 and distinct_colours(300) == colours  # deterministic
    lab = _lab(np.array([_hex_to_rgb(c) for c in colours]))
    grey = _lab(_hex_to_rgb(NOISE_COLOUR)[None, :])
    assert np.linalg.norm(lab - grey, axis=1).min() > 15  # no cluster looks like noise
    first = lab[:20]  # the largest clusters' colours are the most distinct
    gaps = np.linalg.norm(first[:, None] - first[None], axis=2) + np.eye(20) * 1e9
    assert gaps.min() > 30


def test_the_png_and_the_map_give_a_cluster_the_same_colour(tmp_path):
    import json
    import re

    from text_clustering.html_map import build_map_html
    from text_clustering.palette import cluster_colours

    rng = np.random.default_rng(0)
    labels = np.repeat([5, 2, 9, -1], [40, 30, 20, 10])
    points = rng.normal(size=(labels.size, 2)) + labels[:, None]
    names = {5: "five", 2: "two", 9: "nine", -1: "noise"}
    page = build_map_html(points, labels, [""] * labels.size, names)
    found = re.search(r'<script id="data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(found.group(1))
    on_map = {c["id"]: c["colour"] for c in data["clusters"]}
    expected = cluster_colours({5: 40, 2: 30, 9: 20})
    assert on_map == expected  # what save_cluster_figure draws each cluster with


def test_the_png_leads_with_the_headline_topics(tmp_path):
    from text_clustering.figure import topic_annotations

    rng = np.random.default_rng(1)
    labels = np.repeat([0, 1, 2, -1], [30, 20, 10, 5])
    points = (
        rng.normal(size=(labels.size, 2))
        + np.array([0, 10, 20, -30])[np.searchsorted([-1, 0, 1, 2], labels)][:, None]
    )
    topics = ["Games" if c in (0, 1) else "Mail" if c == 2 else None for c in labels]
    found = topic_annotations(points, labels, topics)
    assert [(name, n) for name, _, _, n in found] == [("Games", 50), ("Mail", 10)]
    games = points[labels <= 1][labels[labels <= 1] >= 0]
    np.testing.assert_allclose(found[0][1:3], np.median(games, axis=0))
    out = save_cluster_figure(
        points, labels, {0: "a", 1: "b", 2: "c"}, tmp_path / "t.png", topics=topics
    )
    assert out.stat().st_size > 10_000
