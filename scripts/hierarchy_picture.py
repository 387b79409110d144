"""Draw a build's topic hierarchy as an icicle chart (docs/images/hierarchy.png).

One row per level, the top level first; each topic is a box as wide as its share of the
texts, under its parent, labelled when there is room. Reads dim_topics of a built database:

    .venv/bin/python scripts/hierarchy_picture.py output/text_clustering.duckdb \
        docs/images/hierarchy.png
"""

from __future__ import annotations

import argparse
import textwrap

import duckdb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("database")
    parser.add_argument("output")
    parser.add_argument("--min-level", type=int, default=1, help="lowest level drawn")
    args = parser.parse_args()
    con = duckdb.connect(args.database, read_only=True)
    rows = con.sql(
        "select level, topic_id, parent_topic_id, n_texts, summary_label, is_headline_level "
        f"from dim_topics where level >= {args.min_level} and not is_noise"
    ).fetchall()
    total = sum(r[3] for r in rows if r[0] == max(r[0] for r in rows))
    top = max(r[0] for r in rows)
    children: dict[tuple[int, int], list[tuple]] = {}
    for r in rows:
        if r[2] is not None:
            children.setdefault((r[0] + 1, r[2]), []).append(r)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(16, 1.6 * (top - args.min_level + 1) + 1))
    colours = plt.get_cmap("tab10")

    def draw(row: tuple, left: float, colour: tuple) -> None:
        level, topic, _, n, label, headline = row
        width = n / total
        y = level - args.min_level
        ax.add_patch(
            plt.Rectangle(
                (left, y),
                width,
                0.95,
                facecolor=colour,
                alpha=0.3 + 0.15 * (level - args.min_level),
                edgecolor="white",
                linewidth=1.5 if headline else 0.5,
            )
        )
        chars = int(width * 190)  # characters that fit on one line of the box
        if chars >= 5:
            text = textwrap.shorten(label, 3 * chars, placeholder="…")
            ax.text(
                left + width / 2,
                y + 0.47,
                textwrap.fill(text, chars),
                ha="center",
                va="center",
                fontsize=7,
            )
        offset = left
        for child in sorted(children.get((level, topic), []), key=lambda r: -r[3]):
            draw(child, offset, colour)
            offset += child[3] / total

    left = 0.0
    for i, row in enumerate(sorted((r for r in rows if r[0] == top), key=lambda r: -r[3])):
        draw(row, left, colours(i % 10))
        left += row[3] / total
    headline = next((r[0] for r in rows if r[5]), None)
    ax.set_yticks([level - args.min_level + 0.47 for level in range(args.min_level, top + 1)])
    ax.set_yticklabels(
        [
            f"level {level}" + (" (headline)" if level == headline else "")
            for level in range(args.min_level, top + 1)
        ]
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top - args.min_level + 1)
    ax.set_xticks([])
    ax.set_title(
        f"Topic hierarchy: levels {args.min_level}-{top} (top first), width = share of the "
        f"{total} texts not in noise"
    )
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)


if __name__ == "__main__":
    main()
