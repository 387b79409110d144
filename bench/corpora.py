"""Labelled corpora, offline, as Arrow tables ``id, text, label`` in a fixed shuffled order.

- ``debian``: Debian package descriptions (synopsis, a blank line, the long description, as in
  ``scripts/make_demo_data.py``, never cut) labelled by their archive section. Sections with
  fewer than 100 packages are dropped; the first 20,000 packages of the shuffled pool are kept.
  Needs the apt lists with English descriptions (``apt-get update -o Acquire::Languages=en``).
- ``wordnet``: every WordNet 3.0 synset gloss (Debian package ``wordnet-base``: definition and
  examples, ~117k texts), labelled by its lexicographer file, e.g. ``noun.animal``.
- ``demo``: the demo corpus of the repository (``data/debian_packages.parquet``: 2,914 Debian
  descriptions of 15 sections, made by ``scripts/make_demo_data.py``), labelled by section.
- ``debian5``: 2,000 Debian descriptions (as ``debian``, from the whole pool) of five well-separated
  sections: database, fonts, games, mail, sound. A corpus with few coarse classes.
- ``debian_families``: the texts of ``debian`` (same rows, same order, so the same embeddings)
  labelled by a family of sections (``DEBIAN_FAMILIES``: 11 families such as ``libraries``,
  ``desktop``, ``science``), a coarse reference for the same texts.
- ``fortunes``: the fortune cookies of Debian's ``fortunes`` package, labelled by their file
  (``computers``, ``food``, ...); the offensive ones and files with fewer than 50 are left out.
- ``synthetic``: (written straight to parquet, with embeddings) a mixture of Gaussian centres
  on the unit sphere; each text is a few topic words of its centre among filler words, and its
  label is the centre id.

Rows are ordered by md5 of ``seed:id``, so the first ``n`` rows are a deterministic uniform
sample of size ``n`` and a smaller sample is contained in a larger one.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from common import DATA, ROOT, log

sys.path.insert(0, str(ROOT / "scripts"))
from make_demo_data import SKIPPED_SUFFIXES, read_translations, stanzas

SEED = 42
DEBIAN_MIN_SECTION = 100
DEBIAN_MAX_TEXTS = 20_000
DEBIAN5_SECTIONS = ("database", "fonts", "games", "mail", "sound")
DEBIAN5_TEXTS = 2_000
# Debian archive section -> family (every section of ``debian``: >= 100 packages in the pool).
DEBIAN_FAMILIES = {
    "libraries": ("libs", "libdevel", "introspection"),
    "dynamic languages": ("python", "perl", "ruby", "php", "javascript", "lisp", "interpreters"),
    "compiled languages": ("haskell", "rust", "golang", "java", "ocaml", "cli-mono"),
    "development tools": ("devel", "vcs", "debug"),
    "system": ("admin", "utils", "kernel", "otherosfs", "misc", "metapackages", "tasks", "shells"),
    "network": ("net", "web", "httpd", "mail", "comm", "news"),
    "desktop": ("x11", "gnome", "kde", "xfce", "fonts", "graphics"),
    "multimedia": ("sound", "video"),
    "science": ("science", "math", "gnu-r", "electronics", "hamradio"),
    "documents": ("text", "doc", "tex", "editors", "localization", "database"),
    "games": ("games",),
}
FORTUNES_DIR = Path("/usr/share/games/fortunes")
FORTUNES_MIN_FILE = 50
WORDNET_DIR = Path("/usr/share/wordnet")
# lex_filenum -> lexicographer file name (WordNet 3.0, lexnames(5WN)).
LEXNAMES = (
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
)
SCHEMA = pa.schema([("id", pa.string()), ("text", pa.string()), ("label", pa.string())])


def shuffled(rows: list[dict[str, str]], seed: int = SEED) -> pa.Table:
    """Rows ordered by md5 of ``seed:id``: every prefix is a uniform sample."""
    rows = sorted(rows, key=lambda r: hashlib.md5(f"{seed}:{r['id']}".encode()).hexdigest())
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def debian() -> pa.Table:
    """Debian package descriptions labelled by section (see the module docstring)."""
    return _debian_pool().slice(0, DEBIAN_MAX_TEXTS)


def demo() -> pa.Table:
    """The demo corpus shipped in ``data/debian_packages.parquet`` (2,914 texts, 15 sections)."""
    table = pq.read_table(ROOT / "data" / "debian_packages.parquet")
    rows = [
        {"id": name, "text": text, "label": section}
        for name, text, section in zip(
            table["package"].to_pylist(),
            table["text"].to_pylist(),
            table["section"].to_pylist(),
            strict=True,
        )
    ]
    return shuffled(rows)


def debian5() -> pa.Table:
    """``DEBIAN5_TEXTS`` Debian descriptions of the five ``DEBIAN5_SECTIONS``."""
    pool = _debian_pool()
    keep = pc.is_in(pool["label"], value_set=pa.array(DEBIAN5_SECTIONS))
    return pool.filter(keep).slice(0, DEBIAN5_TEXTS)


def debian_families() -> pa.Table:
    """The texts of :func:`debian` labelled by their section's family (``DEBIAN_FAMILIES``)."""
    family = {section: name for name, sections in DEBIAN_FAMILIES.items() for section in sections}
    table = debian()
    labels = table["label"].to_pylist()
    missing = sorted(set(labels) - set(family))
    if missing:
        raise SystemExit(f"sections without a family in DEBIAN_FAMILIES: {missing}")
    return table.set_column(2, "label", pa.array([family[x] for x in labels], pa.string()))


def _debian_pool() -> pa.Table:
    """Every kept Debian description (sections with >= ``DEBIAN_MIN_SECTION``), shuffled."""
    translations = read_translations()
    dump = subprocess.run(
        ["apt-cache", "dumpavail"], check=True, capture_output=True, text=True
    ).stdout
    rows: list[dict[str, str]] = []
    seen_synopses: set[str] = set()
    for fields in stanzas(dump):
        name = fields.get("Package", "")
        long = translations.get(fields.get("Description-md5", ""), "")
        synopsis = fields.get("Description", "").strip()
        if not long or name.endswith(SKIPPED_SUFFIXES) or synopsis.lower() in seen_synopses:
            continue
        seen_synopses.add(synopsis.lower())
        section = fields.get("Section", "").split("/")[-1]
        rows.append({"id": name, "text": f"{synopsis}\n\n{long}", "label": section})
    sizes = Counter(r["label"] for r in rows)
    rows = [r for r in rows if sizes[r["label"]] >= DEBIAN_MIN_SECTION]
    return shuffled(rows)


def wordnet() -> pa.Table:
    """Every WordNet synset gloss labelled by its lexicographer file."""
    rows: list[dict[str, str]] = []
    for pos in ("noun", "verb", "adj", "adv"):
        path = WORDNET_DIR / f"data.{pos}"
        if not path.exists():
            raise SystemExit(f"{path} is missing: apt-get install wordnet-base")
        for line in path.read_text(encoding="latin-1").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue  # the licence header
            head, _, gloss = line.partition("|")
            offset, lex_filenum = head.split()[:2]
            rows.append(
                {
                    "id": f"{pos}-{offset}",
                    "text": gloss.strip(),
                    "label": LEXNAMES[int(lex_filenum)],
                }
            )
    return shuffled(rows)


def fortunes() -> pa.Table:
    """Debian's fortune cookies labelled by their file."""
    if not FORTUNES_DIR.exists():
        raise SystemExit(f"{FORTUNES_DIR} is missing: apt-get install fortunes")
    rows: list[dict[str, str]] = []
    for path in sorted(FORTUNES_DIR.iterdir()):
        if not path.is_file() or path.suffix in (".dat", ".u8"):
            continue
        texts = [t.strip() for t in path.read_text(errors="replace").split("\n%\n")]
        texts = [t for t in texts if t and t != "%"]
        if len(texts) < FORTUNES_MIN_FILE:
            continue
        rows.extend(
            {"id": f"{path.name}-{i}", "text": text, "label": path.name}
            for i, text in enumerate(texts)
        )
    return shuffled(rows)


# One line per corpus for the reports.
DESCRIPTIONS = {
    "debian": (
        "Debian 12 package descriptions (synopsis + full long description, not cut; the model "
        "reads the first 256 word pieces) labelled by archive section; sections with fewer than "
        f"{DEBIAN_MIN_SECTION} packages dropped; a fixed-seed uniform sample of the first "
        f"{DEBIAN_MAX_TEXTS} of the shuffled pool"
    ),
    "demo": (
        "the demo corpus (`data/debian_packages.parquet`): 2,914 Debian descriptions, up to 200 "
        "from each of 15 sections, labelled by section"
    ),
    "debian5": (
        f"{DEBIAN5_TEXTS} Debian 12 package descriptions (as `debian`) of five well-separated "
        f"sections ({', '.join(DEBIAN5_SECTIONS)}), labelled by section; fixed-seed sample"
    ),
    "debian_families": (
        "the texts of `debian` labelled by one of 11 families of sections (libraries, dynamic "
        "languages, compiled languages, development tools, system, network, desktop, "
        "multimedia, science, documents, games)"
    ),
    "wordnet": (
        "WordNet 3.0 synset glosses (Debian `wordnet-base`; definition + examples) labelled by "
        "lexicographer file (noun.animal, verb.motion, ...; 45 classes); fixed-seed sample"
    ),
    "fortunes": (
        "Debian `fortunes` cookies labelled by fortune file (computers, food, ...); offensive "
        f"ones and files with fewer than {FORTUNES_MIN_FILE} cookies left out"
    ),
}


LOADERS: dict[str, Callable[[], pa.Table]] = {
    "debian": debian,
    "demo": demo,
    "debian5": debian5,
    "debian_families": debian_families,
    "wordnet": wordnet,
    "fortunes": fortunes,
}

SYLLABLES = (
    "ba",
    "ko",
    "ri",
    "mu",
    "te",
    "sa",
    "lo",
    "ne",
    "pi",
    "du",
    "ga",
    "ve",
    "zo",
    "ha",
    "ki",
    "fu",
    "ra",
)
FILLER = (
    "the",
    "of",
    "and",
    "with",
    "for",
    "a",
    "to",
    "in",
    "on",
    "new",
    "uses",
    "some",
    "into",
    "by",
)


def _topic_words(n_centres: int, per_centre: int, rng: np.random.Generator) -> list[list[str]]:
    """Distinct pseudo-words, ``per_centre`` for each centre."""
    words: set[str] = set()
    while len(words) < n_centres * per_centre:
        words.add("".join(rng.choice(SYLLABLES, size=3)))
    ordered = sorted(words)
    rng.shuffle(ordered)
    return [ordered[i * per_centre : (i + 1) * per_centre] for i in range(n_centres)]


def write_synthetic(
    path: Path,
    n: int,
    *,
    n_centres: int = 50,
    dim: int = 384,
    spread: float = 1.2,
    seed: int = SEED,
    chunk: int = 100_000,
) -> None:
    """Write ``n`` synthetic texts with embeddings (``id, text, label, embedding FLOAT[dim]``).

    Centres are uniform on the unit sphere with Zipf-like sizes; a point is its centre plus
    Gaussian noise of expected norm ``spread``, normalised (cosine to its centre ~0.64 for
    1.2). A text is 4 topic words of its centre among 4 filler words."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_centres, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.sqrt(np.arange(1, n_centres + 1))
    weights /= weights.sum()
    vocab = _topic_words(n_centres, 8, rng)
    schema = pa.schema([*SCHEMA, ("embedding", pa.list_(pa.float32(), dim))])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            label = rng.choice(n_centres, size=size, p=weights)
            noise = rng.normal(scale=spread / np.sqrt(dim), size=(size, dim))
            vectors = centres[label] + noise
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            topic = rng.integers(0, 8, size=(size, 4))
            filler = rng.integers(0, len(FILLER), size=(size, 4))
            texts = [
                " ".join(
                    w
                    for pair in zip((vocab[c][j] for j in t), (FILLER[j] for j in f), strict=True)
                    for w in pair
                )
                for c, t, f in zip(label, topic, filler, strict=True)
            ]
            flat = pa.array(vectors.astype(np.float32).reshape(-1), pa.float32())
            batch = pa.table(
                {
                    "id": [f"s{start + i:07d}" for i in range(size)],
                    "text": texts,
                    "label": [f"centre_{c:02d}" for c in label],
                    "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
                },
                schema=schema,
            )
            writer.write_table(batch)
    tmp.replace(path)


def synthetic_input(n: int) -> Path:
    """``bench/data/synthetic-<n>.parquet`` (:func:`write_synthetic`), written when missing."""
    source = DATA / f"synthetic-{n}.parquet"
    if not source.exists():
        log(f"writing {n} synthetic texts to {source}")
        write_synthetic(source, n)
    return source


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Write a labelled corpus (id, text, label) as parquet.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("corpus", choices=[*LOADERS, "synthetic"])
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic only: rows")
    args = parser.parse_args()
    if args.corpus == "synthetic":
        write_synthetic(args.output, args.n)
        print(f"wrote {args.n} synthetic rows to {args.output}")
        return
    table = LOADERS[args.corpus]()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, args.output, compression="zstd")
    labels = Counter(table["label"].to_pylist())
    print(f"wrote {table.num_rows} rows, {len(labels)} labels to {args.output}")
    print(", ".join(f"{k} {v}" for k, v in labels.most_common()))


if __name__ == "__main__":
    main()
