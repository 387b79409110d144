"""How often the private-data detectors fire on the evaluation corpora (privacy.md).

The corpora (corpora.py: Debian package descriptions, WordNet glosses, fortunes, the demo)
hold no private data of their own worth the name: Debian descriptions and fortunes carry
some public e-mail and web addresses, version numbers and the odd phone number in a joke.
Every match there is therefore a false positive for a support-ticket user, or a public
value; the report counts, per class of ``text_clustering.redact``, the texts where it
fires and shows up to five matched strings of each class (so a reader can judge them).
Runs in process in a few seconds; deterministic.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import RESULTS, log, write_report
from corpora import LOADERS
from report import machine, machine_markdown, table

from text_clustering.redact import _PATTERNS, _SIGNS, PII_CLASSES, detected, redact

DEFAULT_CORPORA = "demo,debian,wordnet,fortunes"
EXAMPLES = 5


def matches(text: str, kind: str) -> list[str]:
    """The strings ``kind`` replaces in ``text`` (after the classes before it)."""
    before = redact(text, PII_CLASSES[: PII_CLASSES.index(kind)])
    if not _SIGNS[kind](before):
        return []
    found = [m[0] for m in _PATTERNS[kind].finditer(before)]
    return [m for m in found if detected(m, [kind])]


def measure(name: str) -> dict[str, Any]:
    texts = [t or "" for t in LOADERS[name]().column("text").to_pylist()]
    start = time.perf_counter()
    holding: Counter[str] = Counter()
    values: Counter[str] = Counter()
    for text in texts:
        for kind, n in detected(text).items():
            holding[kind] += 1
            values[kind] += n
    seconds = time.perf_counter() - start
    examples: dict[str, list[str]] = {}
    for kind in PII_CLASSES:
        if not holding[kind]:
            continue
        seen: list[str] = []
        for text in texts:
            for m in matches(text, kind):
                shown = " ".join(m.split())[:80]
                if shown not in seen:
                    seen.append(shown)
            if len(seen) >= EXAMPLES:
                break
        examples[kind] = seen[:EXAMPLES]
    log(f"privacy: {name}: {len(texts)} texts, {dict(holding)} in {seconds:.1f}s")
    return {
        "corpus": name,
        "n_texts": len(texts),
        "texts_with": dict(holding),
        "values": dict(values),
        "seconds": seconds,
        "examples": examples,
    }


def markdown(results: dict[str, Any]) -> str:
    runs = results["corpora"]
    lines = [
        "# How often the private-data detectors fire on the evaluation corpora",
        "",
        f"Made by `bench/privacy.py` on {results['finished']}. Share of texts in which each "
        "class of `text_clustering.redact` finds something (every class is on by default, "
        "var `redact`). These corpora hold no private data of their own, so every match is "
        "a false positive or a public value (a maintainer's e-mail address in a Debian "
        "description).",
        "",
        machine_markdown(results["machine"], None),
        "## Texts with a match, per class",
        "",
    ]
    header = ["corpus", "texts", *PII_CLASSES, "any class", "seconds"]
    rows = []
    for run in runs:
        n = run["n_texts"]
        cells = [
            f"{run['texts_with'].get(k, 0)} ({100 * run['texts_with'].get(k, 0) / n:.2f} %)"
            for k in PII_CLASSES
        ]
        rows.append(
            [
                run["corpus"],
                str(n),
                *cells,
                f"{run['any']} ({100 * run['any'] / n:.2f} %)",
                f"{run['seconds']:.1f}",
            ]
        )
    lines.append(table(header, rows))
    lines += ["", "## What they matched (up to five distinct strings per class)", ""]
    for run in runs:
        for kind, found in run["examples"].items():
            shown = "; ".join(f"`{m}`" for m in found)
            lines.append(f"- {run['corpus']}, {kind}: {shown}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpora", default=DEFAULT_CORPORA)
    parser.add_argument("--output", type=Path, default=RESULTS / "privacy")
    args = parser.parse_args()
    runs = []
    for name in args.corpora.split(","):
        run = measure(name)
        texts = [t or "" for t in LOADERS[name]().column("text").to_pylist()]
        run["any"] = sum(1 for t in texts if redact(t) != t)
        runs.append(run)
    results = {
        "machine": machine(),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "corpora": runs,
    }
    write_report(args.output, results, markdown)
    log(f"privacy: wrote {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
