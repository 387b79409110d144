"""Class-based TF-IDF (c-TF-IDF) keywords per cluster and the offline keyword labeller.

c-TF-IDF (as in BERTopic) treats all texts of a cluster as one document: a term scores high
when it is frequent in the cluster and rare across clusters:
``score(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A`` the mean number of words per
cluster and ``f(t)`` the frequency of ``t`` over all clusters.

When two labels collide, and how they are told apart: :mod:`~text_clustering.collisions`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError

KEYWORD_MODEL_NAME = "c-tf-idf"
# Words of 2+ characters that start with a letter (keeps "c++", "3d" is dropped, "mp3" kept).
TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w+#-]*[\w+#]\b"


# The offline labels' terms (measured in bench/results/labels.md): phrases of two words as
# well as words; a term counts as distinctive when it is in enough of the class's texts and
# clearly more frequent in the class than overall (other terms are used only when too few
# are left); a phrase is kept only when in MIN_TEXTS of the class's texts and at least as
# concentrated in the class as each of its words (else its words say as much).
NGRAM_RANGE = (1, 2)
MIN_TEXTS = 2  # a distinctive term is in at least this many texts of the class ...
MIN_TEXT_SHARE = 0.05  # ... and this share of them (a class of one text: that text)
MIN_LIFT = 1.5  # and its share of the class's words is this many times its share overall


def class_tfidf(
    documents: Sequence[str], classes: Sequence[int], *, top_k: int = 10, **options: Any
) -> dict[int, list[str]]:
    """Return the ``top_k`` c-TF-IDF terms of every class in ``classes`` (best first).

    Ties are broken alphabetically, so the result is deterministic. A class whose texts have
    no usable word gets an empty list. ``options``: :func:`term_counts`' ``ngram_range``
    and :func:`top_terms`' filters.
    """
    ngram_range = options.pop("ngram_range", NGRAM_RANGE)
    ids, counts, terms = term_counts(documents, classes, ngram_range=ngram_range)
    return top_terms(counts, terms, ids, top_k=top_k, **options)


@dataclass(frozen=True)
class TermCounts:
    """Per class (row): every term's occurrences ``(k, n_terms)`` and the number of texts
    holding it ``(k, n_terms)`` (sparse), and the class's texts ``(k,)``. Rows add up:
    ``member @ counts``, with ``member`` a ``(t, k)`` 0/1 array, gives the counts of ``t``
    unions of classes (the topics of a hierarchy), without counting the texts again."""

    occurrences: Any
    documents: Any
    texts: np.ndarray

    __array_ufunc__ = None  # so that `ndarray @ TermCounts` calls __rmatmul__

    def __rmatmul__(self, member: Any) -> TermCounts:
        from scipy.sparse import csr_matrix

        m = csr_matrix(np.asarray(member, dtype=np.float64))
        return TermCounts(
            (m @ self.occurrences).tocsr(),
            (m @ self.documents).tocsr(),
            np.asarray(m @ self.texts, dtype=np.float64).ravel(),
        )


def term_counts(
    documents: Sequence[str],
    classes: Sequence[int],
    *,
    ngram_range: tuple[int, int] = NGRAM_RANGE,
) -> tuple[list[int], TermCounts | None, Any]:
    """``(ids, counts, terms)``: the sorted class ids, the :class:`TermCounts` of every class
    (row ``i`` is class ``ids[i]``), and the terms (words, and phrases of two words with
    ``ngram_range=(1, 2)`` when in two texts or more); ``counts`` is None when no class has a
    usable word. Counts of several classes add up to those of their union (topics)."""
    ids = sorted(set(classes))
    if not ids:
        return ids, None, np.array([], dtype=object)
    from scipy.sparse import csr_matrix

    # ~2 s to import: only here
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    phrases = ngram_range[1] >= 2
    vectorizer = CountVectorizer(
        analyzer=lambda text: _terms(text, ENGLISH_STOP_WORDS, phrases=phrases)
    )
    try:
        per_text = vectorizer.fit_transform([text or "" for text in documents]).tocsc()
    except ValueError:  # empty vocabulary: no class has a usable word
        return ids, None, np.array([], dtype=object)
    terms = vectorizer.get_feature_names_out()
    texts_holding = np.diff(per_text.indptr)
    phrase = np.char.count(terms.astype(str), " ") > 0
    keep = np.flatnonzero(~phrase | (texts_holding >= 2))  # a phrase of one text is noise
    per_text, terms = per_text[:, keep].tocsr(), terms[keep]
    row = np.searchsorted(ids, np.asarray(classes))
    member = csr_matrix((np.ones(len(row)), (row, np.arange(len(row)))), shape=(len(ids), len(row)))
    holding = per_text.copy()
    holding.data[:] = 1.0
    counts = TermCounts(
        (member @ per_text).astype(np.float64).tocsr(),
        (member @ holding).astype(np.float64).tocsr(),
        np.bincount(row, minlength=len(ids)).astype(np.float64),
    )
    return ids, counts, terms


_TOKEN = re.compile(TOKEN_PATTERN)
_PHRASE_BREAK = re.compile(r"[^\w\s+#'-]+")  # punctuation ends a phrase: , . ; : ( ) / ...


def _terms(text: str, stop_words: Any, *, phrases: bool) -> list[str]:
    """The words of ``text`` (lower-cased, :data:`TOKEN_PATTERN`, English stop words
    left out) and, with ``phrases``, every two adjacent words that no stop word or
    punctuation separates (``"a text editor (vim)"``: ``text``, ``editor``, ``text
    editor``, ``vim``)."""
    out: list[str] = []
    for fragment in _PHRASE_BREAK.split((text or "").lower()):
        previous = None
        for word in _TOKEN.findall(fragment):
            if word in stop_words:
                previous = None
                continue
            out.append(word)
            if phrases and previous is not None:
                out.append(f"{previous} {word}")
            previous = word
    return out


def top_terms(
    counts: Any,
    terms: Any,
    ids: Sequence[int],
    *,
    top_k: int = 10,
    min_texts: int = MIN_TEXTS,
    min_text_share: float = MIN_TEXT_SHARE,
    min_lift: float = MIN_LIFT,
    phrases_over_words: bool = True,
) -> dict[int, list[str]]:
    """The ``top_k`` c-TF-IDF terms of every class (row of ``counts``, ids ``ids``), best
    first, ties alphabetical: ``score(t, c) = tf(t, c) / |c| * log(1 + A / f(t))``.

    Distinctive terms come first: in at least ``min_texts`` and ``min_text_share`` of the
    class's texts, and with a share of the class's words ``min_lift`` times their share of
    all words (a word spread evenly over the classes has a lift of about 1; for a class too
    large to reach ``min_lift``, halfway to the highest lift it can have); the other terms
    follow, in score order, for classes with too few distinctive ones. A phrase (two words)
    is dropped unless in ``min_texts`` of the class's texts and, with
    ``phrases_over_words``, at least as concentrated in the class (``tf(t, c) / f(t)``) as
    each of its words. ``counts`` is a :class:`TermCounts`
    (or a plain ``(k, n_terms)`` matrix of occurrences: no text counts, no text filter)."""
    if counts is None:
        return {c: [] for c in ids}
    from scipy.sparse import csr_matrix

    if not isinstance(counts, TermCounts):
        occurrences = csr_matrix(counts, dtype=np.float64)
        counts = TermCounts(occurrences, occurrences, np.full(occurrences.shape[0], np.inf))
        min_texts, min_text_share = 0, 0.0
    occurrences = csr_matrix(counts.occurrences)
    occurrences.sort_indices()
    documents = csr_matrix(counts.documents)
    documents.sort_indices()
    terms = np.asarray(terms, dtype=object)
    words_per_class = np.asarray(occurrences.sum(axis=1)).ravel()
    term_frequency = np.asarray(occurrences.sum(axis=0)).ravel()
    all_words = max(float(words_per_class.sum()), 1.0)
    idf = np.log1p(words_per_class.mean() / np.maximum(term_frequency, 1e-12))
    parts = _phrase_parts(terms)
    out: dict[int, list[str]] = {}
    for row, c in enumerate(ids):
        cols, tf = _row(occurrences, row)
        held = _values_at(documents, row, cols)
        size = max(words_per_class[row], 1.0)
        scores = tf / size * idf[cols]
        lift = (tf / size) / (term_frequency[cols] / all_words)
        needed = min(max(min_texts, min_text_share * counts.texts[row]), counts.texts[row])
        # a class of over 1 / min_lift of all words cannot reach min_lift: halfway up, then
        highest = all_words / size
        distinctive = (held >= needed) & (lift >= min(min_lift, (1.0 + highest) / 2))
        is_phrase = parts[cols, 0] >= 0
        keep = ~is_phrase | (held >= min(min_texts, counts.texts[row]))
        if phrases_over_words and is_phrase.any():
            concentration = tf / np.maximum(term_frequency[cols], 1e-12)
            for k in (0, 1):  # the concentration of each word of a phrase, in this class
                word = np.searchsorted(cols, np.maximum(parts[cols, k], 0))
                word = np.minimum(word, max(cols.size - 1, 0))
                keep &= ~is_phrase | (concentration >= concentration[word])
        order = _first(np.flatnonzero(keep), ~distinctive, -scores, terms[cols], top_k)
        out[c] = [str(terms[cols[i]]) for i in order]
    return out


def _first(
    candidates: np.ndarray, first: np.ndarray, second: np.ndarray, names: np.ndarray, k: int
) -> list[int]:
    """The ``k`` of ``candidates`` that come first by ``(first, second, names)`` (each
    indexed by candidate), in that order: the same as sorting them all by that key, but
    only the leaders and those tied with the ``k``-th on ``(first, second)`` are sorted with
    their names in Python (a topic of many texts has tens of thousands of terms)."""
    if candidates.size == 0 or k <= 0:
        return []
    ranked = candidates[np.lexsort((second[candidates], first[candidates]))]
    end = min(k, ranked.size)
    last = ranked[end - 1]
    while end < ranked.size and (first[ranked[end]], second[ranked[end]]) == (
        first[last],
        second[last],
    ):
        end += 1  # tied with the k-th: the names decide between them
    leaders = sorted(ranked[:end].tolist(), key=lambda i: (first[i], second[i], names[i]))
    return leaders[:k]


def _row(matrix: Any, row: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return matrix.indices[start:end], matrix.data[start:end]


def _values_at(matrix: Any, row: int, cols: np.ndarray) -> np.ndarray:
    """``matrix[row, cols]`` for sorted ``cols`` (0 where the row has no entry)."""
    have, values = _row(matrix, row)
    at = np.minimum(np.searchsorted(have, cols), max(have.size - 1, 0))
    found = have.size > 0
    return np.where(found & (have[at] == cols), values[at] if found else 0.0, 0.0)


def _phrase_parts(terms: np.ndarray) -> np.ndarray:
    """``(n_terms, 2)``: for a phrase of two words the columns of its words, else -1."""
    index = {str(t): i for i, t in enumerate(terms)}
    parts = np.full((len(terms), 2), -1, dtype=np.int64)
    for i, term in enumerate(terms):
        words = str(term).split(" ")
        if len(words) == 2 and words[0] in index and words[1] in index:
            parts[i] = index[words[0]], index[words[1]]
    return parts


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


def keyword_labels(keywords: Sequence[str], *, n: int = 1, terms_per_label: int = 3) -> list[str]:
    """Turn ranked keywords into ``n`` plain-text labels like ``"text editor, vim, emacs"``.

    Near-duplicates are skipped (:func:`distinct_terms`); label ``i`` uses the ``i``-th
    group of ``terms_per_label`` remaining terms. Returns fewer than ``n`` labels when the
    keywords run out (the caller fills the rest).
    """
    distinct = distinct_terms(keywords)
    groups = [distinct[i : i + terms_per_label] for i in range(0, len(distinct), terms_per_label)]
    return [", ".join(group) for group in groups[:n] if group]


def distinct_terms(keywords: Sequence[str]) -> list[str]:
    """The keywords without near-duplicates, in order: a term whose words are all in the
    terms kept before (``font`` / ``fonts``, ``editor`` after ``text editor``) or that
    extends a kept word (``python3`` after ``python``, ``compiler`` after ``compile``) is
    skipped; a phrase that holds one kept word takes its place (``editor``, then ``text
    editor``: ``text editor``)."""
    kept: list[str] = []
    for term in keywords:
        words = _stems(term)
        if not words:
            continue
        clashing = [
            i
            for i, k in enumerate(kept)
            if any(w == c or _extends(w, c) for w in words for c in _stems(k))
        ]
        if not clashing:
            kept.append(term)
        elif len(words) > 1 and len(clashing) == 1 and _stems(kept[clashing[0]]) < words:
            kept[clashing[0]] = term  # the phrase says more than its word alone
    return kept


def _stems(term: str) -> set[str]:
    return {_stem(w) for w in term.split()}


def _extends(word: str, other: str) -> bool:
    """One word is the other plus a suffix (``python3`` / ``python``, ``compiler`` /
    ``compile``), the shorter of 4 characters or more."""
    short, long = sorted((word, other), key=len)
    return word != other and len(short) >= 4 and long.startswith(short)


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

    def terms_wanted(self) -> int:
        """Terms ranked per class: more than shown, so that n labels of distinct terms can
        be made."""
        return max(self.top_k, 2 * self.terms_per_label * self.n)

    def fit(self, texts: Sequence[str], classes: Sequence[int]) -> KeywordModel:
        if self.n < 1:
            raise ConfigError(f"dbt var `n` must be an integer >= 1, got {self.n!r}.")
        found = class_tfidf(texts, classes, top_k=self.terms_wanted())
        self.labels_ = label_from_keywords(found, n=self.n, default_label=self.default_label)
        self.keywords_ = {c: terms[: self.top_k] for c, terms in found.items()}
        return self
