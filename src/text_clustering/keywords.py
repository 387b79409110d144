"""Class-based TF-IDF (c-TF-IDF) keywords per cluster, the offline keyword labeller, and the
rule that tells when two labels collide.

c-TF-IDF (as in BERTopic) treats all texts of a cluster as one document: a term scores high
when it is frequent in the cluster and rare across clusters:
``score(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A`` the mean number of words per
cluster and ``f(t)`` the frequency of ``t`` over all clusters.

Two labels *collide* when they have the same set of terms once lower-cased, stripped of
punctuation and of a few function words, and lightly stemmed (:func:`label_key`): "Text
editors", "text editor." and "Editors, text" all collide; "Text editors" and "Text editing"
do not. Colliding clusters are told apart by :func:`disambiguate`, which appends each one's
best-ranked keyword that its siblings' labels lack.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .errors import ConfigError

KEYWORD_MODEL_NAME = "c-tf-idf"
# Words of 2+ characters that start with a letter (keeps "c++", "3d" is dropped, "mp3" kept).
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w+#-]*[\w+#]\b"


def class_tfidf(
    documents: Sequence[str], classes: Sequence[int], *, top_k: int = 10
) -> dict[int, list[str]]:
    """Return the ``top_k`` c-TF-IDF terms of every class in ``classes`` (best first).

    Ties are broken alphabetically, so the result is deterministic. A class whose texts have
    no usable word gets an empty list.
    """
    ids, counts, terms = term_counts(documents, classes)
    return top_terms(counts, terms, ids, top_k=top_k)


def term_counts(documents: Sequence[str], classes: Sequence[int]) -> tuple[list[int], Any, Any]:
    """``(ids, counts, terms)``: the sorted class ids, a sparse ``(len(ids), n_terms)`` matrix
    of term counts per class, and the terms; ``counts`` is None when no class has a usable
    word. Counts of several classes add up to those of their union (topics of a hierarchy)."""
    ids = sorted(set(classes))
    by_class: dict[int, list[str]] = {c: [] for c in ids}
    for text, c in zip(documents, classes, strict=True):
        by_class[c].append(text or "")
    if not ids:
        return ids, None, np.array([], dtype=object)
    from sklearn.feature_extraction.text import CountVectorizer  # ~2 s to import: only here

    vectorizer = CountVectorizer(stop_words="english", token_pattern=TOKEN_PATTERN, lowercase=True)
    try:
        counts = vectorizer.fit_transform([" ".join(by_class[c]) for c in ids])
    except ValueError:  # empty vocabulary: no class has a usable word
        return ids, None, np.array([], dtype=object)
    return ids, counts.astype(np.float64), vectorizer.get_feature_names_out()


def top_terms(
    counts: Any, terms: Any, ids: Sequence[int], *, top_k: int = 10
) -> dict[int, list[str]]:
    """The ``top_k`` c-TF-IDF terms of every class (row of ``counts``, ids ``ids``), best
    first, ties alphabetical: ``score(t, c) = tf(t, c) / |c| * log(1 + A / f(t))``."""
    if counts is None:
        return {c: [] for c in ids}
    from scipy.sparse import csr_matrix

    counts = csr_matrix(counts)
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    term_frequency = np.asarray(counts.sum(axis=0)).ravel()
    average_words = words_per_class.mean()
    idf = np.log1p(average_words / np.maximum(term_frequency, 1e-12))
    tf = counts.multiply(1.0 / np.maximum(words_per_class, 1.0)[:, None]).tocsr()
    scores = tf.multiply(idf[None, :]).tocsr()
    out: dict[int, list[str]] = {}
    for row, c in enumerate(ids):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        cols, vals = scores.indices[start:end], scores.data[start:end]
        order = sorted(range(len(cols)), key=lambda i: (-vals[i], terms[cols[i]]))
        out[c] = [str(terms[cols[i]]) for i in order[:top_k]]
    return out


# Function words ignored when comparing labels (a short list on purpose: "system", "file"
# or "web" carry meaning in a label, though scikit-learn's English stop words drop them).
LABEL_STOP_WORDS = frozenset(
    {"a", "an", "and", "any", "as", "at", "by", "etc", "for", "from", "in", "into", "its"}
    | {"misc", "miscellaneous", "of", "on", "or", "other", "the", "their", "to", "various"}
    | {"with"}
)
_LABEL_WORD = re.compile(r"[^\W_]+[+#]*")  # words and numbers; keeps "c++", "c#"


def _stem(term: str) -> str:
    """A light stem: ``libraries`` -> ``library``, ``fonts`` -> ``font``, ``classes`` ->
    ``class``, ``mailboxes`` -> ``mailbox``; ``glass``, ``corpus``, ``analysis`` stay."""
    if len(term) > 4 and term.endswith("ies"):
        return term[:-3] + "y"
    if len(term) > 4 and term.endswith(("sses", "xes")):
        return term[:-2]
    if len(term) > 3 and term.endswith("s") and not term.endswith(("ss", "us", "is")):
        return term[:-1]
    return term


def label_key(label: str) -> frozenset[str]:
    """The terms of a label that decide whether it collides with another: its words,
    lower-cased, without punctuation and :data:`LABEL_STOP_WORDS`, lightly stemmed, as a
    set (order and repeats do not count). A label of function words only keeps them."""
    words = [w.lower() for w in _LABEL_WORD.findall(label or "")]
    terms = {_stem(w) for w in words if w not in LABEL_STOP_WORDS}
    return frozenset(terms or {_stem(w) for w in words})


def labels_collide(a: str, b: str) -> bool:
    """True when two labels name the same thing for a reader: equal :func:`label_key`
    (e.g. "Text editors" / "text editor." / "Editors, text"). Blank labels collide."""
    return label_key(a) == label_key(b)


def collision_groups(labels: Mapping[int, str]) -> list[list[int]]:
    """The clusters whose labels collide (:func:`labels_collide`), as groups of two or more
    cluster ids; each group and the list sorted ascending. ``labels`` maps a cluster to its
    primary label."""
    by_key: dict[frozenset[str], list[int]] = {}
    for cluster_label in sorted(labels):
        by_key.setdefault(label_key(labels[cluster_label]), []).append(cluster_label)
    return sorted(group for group in by_key.values() if len(group) > 1)


@dataclass(frozen=True)
class Disambiguated:
    """A label made distinct: the label, the keywords appended to it, and whether it still
    collides with another (no distinguishing keyword left, or ``max_terms`` reached)."""

    label: str
    added_terms: tuple[str, ...] = ()
    collides: bool = False


def render_label(label: str, terms: Sequence[str], style: Literal["list", "parenthesis"]) -> str:
    """``label`` with ``terms`` appended: ``"fonts, truetype, dejavu"`` (``list``, for keyword
    labels) or ``"Text editors (vim, modal)"`` (``parenthesis``, for written labels)."""
    if not terms:
        return label
    if style == "list":
        return ", ".join([label, *terms]) if label else ", ".join(terms)
    return f"{label} ({', '.join(terms)})"


def disambiguate(
    labels: Mapping[int, str],
    keywords: Mapping[int, Sequence[str]],
    *,
    style: Literal["list", "parenthesis"] = "list",
    max_terms: int = 3,
) -> dict[int, Disambiguated]:
    """Make colliding labels distinct by appending keywords; every cluster of ``labels`` is
    returned, unchanged when its label collides with none.

    In rounds, while labels collide (:func:`collision_groups`) and fewer than ``max_terms``
    terms were added: each cluster of a group, in ascending order, gets its best-ranked
    keyword (``keywords[c]``, best first) whose stem is in neither its own label nor any
    sibling's current label (so two siblings never add the same term). A cluster with no
    such keyword left keeps its label and is returned with ``collides=True``.
    Deterministic: the result depends only on the inputs.
    """
    current = dict(labels)
    added: dict[int, list[str]] = {c: [] for c in labels}
    for _ in range(max(max_terms, 0)):
        groups = collision_groups(current)
        if not groups:
            break
        progressed = False
        for group in groups:
            for c in group:
                taken = label_key(current[c]).union(
                    *(label_key(current[s]) for s in group if s != c)
                )
                term = next(
                    (
                        t
                        for t in keywords.get(c, ())
                        if t and label_key(t) and not label_key(t) & taken
                    ),
                    None,
                )
                if term is None:
                    continue
                added[c].append(term)
                current[c] = render_label(labels[c], added[c], style)
                progressed = True
        if not progressed:
            break
    still = {c for group in collision_groups(current) for c in group}
    return {c: Disambiguated(current[c], tuple(added[c]), c in still) for c in sorted(labels)}


def keyword_labels(keywords: Sequence[str], *, n: int = 1, terms_per_label: int = 3) -> list[str]:
    """Turn ranked keywords into ``n`` plain-text labels like ``"fonts, truetype, typeface"``.

    Near-duplicates (``font`` / ``fonts``) are skipped; label ``i`` uses the ``i``-th group
    of ``terms_per_label`` remaining terms. Returns fewer than ``n`` labels when the
    keywords run out (the caller fills the rest).
    """
    distinct: list[str] = []
    seen: set[str] = set()
    for term in keywords:
        if _stem(term) not in seen:
            seen.add(_stem(term))
            distinct.append(term)
    groups = [distinct[i : i + terms_per_label] for i in range(0, len(distinct), terms_per_label)]
    return [", ".join(group) for group in groups[:n] if group]


def label_from_keywords(
    keywords: Mapping[int, Sequence[str]], *, n: int, default_label: str
) -> dict[int, list[str]]:
    """Exactly ``n`` keyword labels per cluster, padded with ``default_label`` when short."""
    out = {}
    for cluster_label, terms in keywords.items():
        labels = keyword_labels(terms, n=n)
        out[cluster_label] = labels + [default_label] * (n - len(labels))
    return out


class KeywordModel:
    """Per class its top ``top_k`` c-TF-IDF keywords and ``n`` offline labels made of them.

    ``fit(texts, classes)`` learns ``keywords_`` (class -> terms, best first) and
    ``labels_`` (class -> exactly ``n`` labels of ``terms_per_label`` keywords, padded with
    ``default_label`` when the keywords run out). Deterministic (ties alphabetical).
    """

    def __init__(
        self,
        *,
        top_k: int = 10,
        n: int = 1,
        terms_per_label: int = 3,
        default_label: str = "Unclassified",
    ) -> None:
        self.top_k = top_k
        self.n = n
        self.terms_per_label = terms_per_label
        self.default_label = default_label

    def fit(self, texts: Sequence[str], classes: Sequence[int]) -> KeywordModel:
        if self.n < 1:
            raise ConfigError(f"dbt var `n` must be an integer >= 1, got {self.n!r}.")
        # more terms than shown, so that n labels of distinct terms can be made
        wanted = max(self.top_k, 2 * self.terms_per_label * self.n)
        found = class_tfidf(texts, classes, top_k=wanted)
        self.labels_ = label_from_keywords(found, n=self.n, default_label=self.default_label)
        self.keywords_ = {c: terms[: self.top_k] for c, terms in found.items()}
        return self
