"""Class-based TF-IDF (c-TF-IDF) keywords per cluster, and the offline keyword labeller.

c-TF-IDF (as in BERTopic) treats all texts of a cluster as one document: a term scores high
when it is frequent in the cluster and rare across clusters:
``score(t, c) = tf(t, c) / |c| * log(1 + A / f(t))`` with ``A`` the mean number of words per
cluster and ``f(t)`` the frequency of ``t`` over all clusters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

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
    ids = sorted(set(classes))
    if not ids:
        return {}
    by_class: dict[int, list[str]] = {c: [] for c in ids}
    for text, c in zip(documents, classes, strict=True):
        by_class[c].append(text or "")
    joined = [" ".join(by_class[c]) for c in ids]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=TOKEN_PATTERN, lowercase=True)
    try:
        counts = vectorizer.fit_transform(joined).astype(np.float64)
    except ValueError:  # empty vocabulary: no class has a usable word
        return {c: [] for c in ids}
    terms = vectorizer.get_feature_names_out()
    words_per_class = np.asarray(counts.sum(axis=1)).ravel()
    term_frequency = np.asarray(counts.sum(axis=0)).ravel()
    average_words = words_per_class.mean()
    idf = np.log1p(average_words / term_frequency)
    tf = counts.multiply(1.0 / np.maximum(words_per_class, 1.0)[:, None]).tocsr()
    scores = tf.multiply(idf[None, :]).tocsr()
    out: dict[int, list[str]] = {}
    for row, c in enumerate(ids):
        start, end = scores.indptr[row], scores.indptr[row + 1]
        cols, vals = scores.indices[start:end], scores.data[start:end]
        order = sorted(range(len(cols)), key=lambda i: (-vals[i], terms[cols[i]]))
        out[c] = [str(terms[cols[i]]) for i in order[:top_k]]
    return out


def _stem(term: str) -> str:
    return term[:-1] if term.endswith("s") and len(term) > 3 else term


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
