"""Build the demo corpus: Debian package descriptions labelled with their section.

The corpus shipped in ``data/debian_packages.parquet`` was made with this script on a
Debian 12 (bookworm) machine. To remake it (the demo itself never needs apt)::

    apt-get update -o Acquire::Languages=en     # fetches the English long descriptions
    python scripts/make_demo_data.py --per-section 200 --output data/debian_packages.parquet

Each row is one binary package of a chosen section: ``package``, ``section`` (the reference
label), ``synopsis`` and ``text`` (synopsis, a blank line, then the long description).
Packages named ``*-data``, ``*-doc``, ``*-dbg``, ``*-common`` and repeated synopses are
skipped, so the texts are distinct. Sampling is deterministic: within a section, packages
are ordered by the md5 of their name and the first ``--per-section`` are kept.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

SECTIONS = (
    "database",
    "editors",
    "electronics",
    "fonts",
    "games",
    "graphics",
    "hamradio",
    "mail",
    "math",
    "net",
    "science",
    "sound",
    "text",
    "video",
    "web",
)
SKIPPED_SUFFIXES = ("-data", "-doc", "-dbg", "-common")
TRANSLATION_GLOB = "/var/lib/apt/lists/*_i18n_Translation-en*"


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Yield RFC 822 stanzas (as in ``apt-cache dumpavail``) as field -> value dicts."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line.startswith((" ", "\t")) and key is not None:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


def long_description(value: str) -> str:
    """Turn a Debian ``Description-en`` value (synopsis + folded lines) into plain text."""
    paragraphs: list[list[str]] = [[]]
    for line in value.split("\n")[1:]:
        line = line[1:] if line.startswith(" ") else line
        if line.strip() == ".":
            paragraphs.append([])
        else:
            paragraphs[-1].append(line.strip())
    return "\n".join(" ".join(p) for p in paragraphs if p)


def read_translations() -> dict[str, str]:
    """Map Description-md5 -> long description from the apt English translation files."""
    files = sorted(glob.glob(TRANSLATION_GLOB))
    if not files:
        raise SystemExit(
            "No English translation files under /var/lib/apt/lists. "
            "Run: apt-get update -o Acquire::Languages=en"
        )
    out: dict[str, str] = {}
    for path in files:
        raw = subprocess.run(
            ["/usr/lib/apt/apt-helper", "cat-file", path],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for fields in stanzas(raw):
            md5 = fields.get("Description-md5")
            if md5 and "Description-en" in fields:
                out[md5] = long_description(fields["Description-en"])
    return out


def build(per_section: int, sections: tuple[str, ...]) -> pa.Table:
    translations = read_translations()
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True, text=True
    ).stdout
    by_section: dict[str, dict[str, dict[str, str]]] = {s: {} for s in sections}
    for fields in stanzas(dump):
        name = fields.get("Package", "")
        section = fields.get("Section", "").split("/")[-1]
        if section not in by_section or name.endswith(SKIPPED_SUFFIXES):
            continue
        long = translations.get(fields.get("Description-md5", ""), "")
        if not long:
            continue
        by_section[section][name] = {
            "package": name,
            "section": section,
            "synopsis": fields["Description"].strip(),
            "text": f"{fields['Description'].strip()}\n\n{long}",
        }

    seen_synopses: set[str] = set()
    rows: list[dict[str, str]] = []
    for section in sections:
        ordered = sorted(
            by_section[section].values(),
            key=lambda r: hashlib.md5(r["package"].encode()).hexdigest(),
        )
        kept = 0
        for row in ordered:
            key = row["synopsis"].lower()
            if key in seen_synopses:
                continue
            seen_synopses.add(key)
            rows.append(row)
            kept += 1
            if per_section and kept >= per_section:
                break
    rows.sort(key=lambda r: r["package"])
    return pa.Table.from_pylist(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-section", type=int, default=200, help="0 keeps all")
    parser.add_argument("--sections", default=",".join(SECTIONS))
    parser.add_argument("--output", type=Path, default=Path("data/debian_packages.parquet"))
    args = parser.parse_args()
    table = build(args.per_section, tuple(args.sections.split(",")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.output, compression="zstd", compression_level=19)
    counts = table.group_by("section").aggregate([("package", "count")]).to_pylist()
    print(f"wrote {table.num_rows} rows to {args.output}: {counts}")


if __name__ == "__main__":
    main()
