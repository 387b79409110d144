import numpy as np
import pyarrow as pa

from text_clustering import save_cluster_figure, to_arrow
from text_clustering.figure import draw_cluster_figure
from text_clustering.report import figure_summary

POINTS = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [5, 5]], dtype=np.float32)
LABELS = np.array([0, 0, 0, 1, 1, -1], dtype=np.int32)


def test_png_is_written(tmp_path):
    path = save_cluster_figure(POINTS, LABELS, {0: "x", 1: "y"}, tmp_path / "sub" / "f.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_the_png_is_drawn_once_and_is_what_savefig_draws_after_its_hidden_pass(
    tmp_path, monkeypatch
):
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    rng = np.random.default_rng(0)
    points = rng.normal(size=(400, 2)).astype(np.float32)
    labels = (points[:, 0] > 0).astype(np.int32)
    names = {0: "left", 1: "right"}
    fig, _ = draw_cluster_figure(points, labels, names)  # savefig as matplotlib does it
    assert fig.get_layout_engine() is not None  # tight_layout leaves one: a hidden pass
    fig.savefig(tmp_path / "twice.png", dpi=150)
    plt.close(fig)
    draws = []
    real_draw = Figure.draw
    monkeypatch.setattr(Figure, "draw", lambda self, r: draws.append(1) or real_draw(self, r))
    path = save_cluster_figure(points, labels, names, tmp_path / "once.png")
    assert len(draws) == 1
    assert path.read_bytes() == (tmp_path / "twice.png").read_bytes()


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


def test_the_png_alone_reads_no_text_and_the_map_reads_them(tmp_path):
    # reading and redacting every text for a PNG that draws none took gigabytes at 1M texts
    import duckdb
    import pytest

    from text_clustering.steps.reports import cluster_figures

    con = duckdb.connect()
    con.execute(
        "create view clusters as select 't' || i as text_id, [i % 7, i // 7]::float[2] as "
        "projection, (i % 3)::int as cluster_label, 'topic ' || (i % 3) as topic_label, "
        "['topic ' || (i % 3)] as topic_path, 'label ' || (i % 3) as summary_label, "
        "false as is_excluded, error('the text was read') as text from range(60) r(i)"
    )
    config = {"figure_path": str(tmp_path / "f.png"), "savefig": True, "map_path": None}
    row = cluster_figures(con, None, con.sql("select * from clusters"), config).to_pylist()[0]
    assert row["n_texts_drawn"] == 60 and (tmp_path / "f.png").exists()
    config["map_path"] = str(tmp_path / "m.html")
    with pytest.raises(duckdb.Error, match="the text was read"):
        cluster_figures(con, None, con.sql("select * from clusters"), config)


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


def demo_like(n: int = 6000, seed: int = 3):
    """Dense clusters (40, in 8 headline topics, sizes from 20 to 400) like the demo's, and
    5 % noise; cluster labels as long as the demo's."""
    rng = np.random.default_rng(seed)
    sizes = np.linspace(400, 20, 40).astype(int)
    labels = np.concatenate([np.repeat(np.arange(40), sizes), np.full(n // 20, -1)])
    centres = rng.uniform(0, 40, (40, 2))
    spread = rng.uniform(0.3, 1.2, 40)
    own = np.maximum(labels, 0)
    points = np.where(
        (labels >= 0)[:, None],
        centres[own] + rng.normal(size=(labels.size, 2)) * spread[own, None],
        rng.uniform(0, 40, (labels.size, 2)),
    )
    names = {c: f"cluster {c}: keywords, about, this" for c in range(40)}
    topics = [None if c < 0 else f"topic {c % 8}, a headline" for c in labels]
    return points, labels, names, topics


def test_no_label_covers_its_own_points_or_another_label():
    from matplotlib.text import Text

    from text_clustering.figure import MAX_OWN_SHARE

    points, labels, names, topics = demo_like()
    fig, placed = draw_cluster_figure(points, labels, names, topics=topics)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    display = ax.transData.transform(points)
    boxes = []
    for label in placed:
        box = Text.get_window_extent(label.artist, renderer)
        own = display[label.members]
        inside = (
            (own[:, 0] >= box.x0) & (own[:, 0] <= box.x1)
            & (own[:, 1] >= box.y0) & (own[:, 1] <= box.y1)
        )  # fmt: skip
        assert inside.mean() <= MAX_OWN_SHARE, (label.name, inside.mean())
        boxes.append(box)
    assert not [
        (placed[i].name, placed[j].name)
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    kinds = [p.kind for p in placed]
    assert kinds.count("topic") == 8  # every headline topic named (large, in the columns)
    assert {p.name for p in placed if p.kind == "topic"} == {
        f"topic {k}, a headline" for k in range(8)
    }
    assert kinds.count("cluster") >= 15  # and many clusters, small, beside their points
    title = ax.get_title(loc="left")
    assert f"{labels.size:,} texts, 40 clusters in 8 headline topics, 3% noise" in title
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_no_two_drawn_clusters_share_a_colour():
    from matplotlib.colors import to_hex

    from text_clustering.palette import NOISE_COLOUR

    points, labels, names, topics = demo_like(n=3000, seed=4)
    fig, _ = draw_cluster_figure(points, labels, names, topics=topics)
    seen: dict[int, set[str]] = {}
    where = {tuple(p): int(c) for p, c in zip(points.round(6), labels, strict=True)}
    for collection in fig.axes[0].collections:
        offsets = collection.get_offsets()
        colours = np.broadcast_to(collection.get_facecolors(), (len(offsets), 4))
        for xy, colour in zip(offsets, colours, strict=True):
            seen.setdefault(where[tuple(np.asarray(xy).round(6))], set()).add(to_hex(colour[:3]))
    assert set(seen) == set(range(40)) | {-1}
    assert all(len(v) == 1 for v in seen.values())  # one colour per cluster
    colours = [next(iter(seen[c])) for c in range(40)]
    assert len(set(colours)) == 40 and NOISE_COLOUR not in colours  # all distinct, none grey
    assert seen[-1] == {NOISE_COLOUR}
    import matplotlib.pyplot as plt

    plt.close(fig)
