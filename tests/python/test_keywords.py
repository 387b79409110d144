import math

import pytest

from text_clustering import class_tfidf, keyword_labels
from text_clustering.keywords import label_from_keywords

DOCS = [
    "vim editor modal editor",
    "emacs editor",
    "chess game board",
    "board game dice",
]
CLASSES = [0, 0, 1, 1]


def test_class_tfidf_ranks_terms_frequent_in_the_class_and_rare_elsewhere():
    keywords = class_tfidf(DOCS, CLASSES, top_k=3)
    assert keywords[0][0] == "editor"
    assert keywords[1][:2] == ["board", "game"]  # tie on score: alphabetical


def test_class_tfidf_scores_match_the_formula_by_hand():
    # class 0: editor x3, vim, modal, emacs (6 words); class 1: chess, game x2, board x2, dice
    # A = mean words per class = 6; editor: tf 3/6, f = 3 -> 0.5 * log(1 + 6/3)
    # vim: tf 1/6, f = 1 -> log(7)/6. editor scores log(3)/2 = 0.549 > vim 0.324.
    assert 0.5 * math.log(3) > math.log(7) / 6
    keywords = class_tfidf(DOCS, CLASSES, top_k=10)
    assert keywords[0] == ["editor", "emacs", "modal", "vim"]
    assert keywords[1] == ["board", "game", "chess", "dice"]


def test_class_without_words_gets_no_keywords():
    assert class_tfidf(["", "!!!"], [0, 1]) == {0: [], 1: []}
    assert class_tfidf([], []) == {}


def test_keyword_labels_skip_plural_twins_and_split_into_n_labels():
    terms = ["font", "fonts", "truetype", "typeface", "serif", "glyph", "unicode"]
    assert keyword_labels(terms, n=1) == ["font, truetype, typeface"]
    assert keyword_labels(terms, n=2) == ["font, truetype, typeface", "serif, glyph, unicode"]


def test_label_from_keywords_always_gives_n_labels():
    labels = label_from_keywords({3: ["alpha", "beta"], 4: []}, n=2, default_label="Other")
    assert labels == {3: ["alpha, beta", "Other"], 4: ["Other", "Other"]}


@pytest.mark.parametrize("n", [1, 3])
def test_labels_are_plain_strings(n):
    out = keyword_labels(["a1", "b2", "c3", "d4"], n=n)
    assert all(isinstance(x, str) and "[" not in x for x in out)
