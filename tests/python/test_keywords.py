import math

import numpy as np
import pytest

from text_clustering.collisions import (
    Disambiguated,
    collision_groups,
    disambiguate,
    label_key,
    labels_collide,
)
from text_clustering.keywords import (
    _first,
    class_tfidf,
    distinct_terms,
    keyword_labels,
    label_from_keywords,
    term_counts,
    top_terms,
)

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


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Text editors", "text editor."),  # case, punctuation, plural
        ("Text editors", "Editors, text"),  # order
        ("Tools for the mail server", "mail server tools"),  # function words
        ("Software libraries", "software library"),  # -ies
        ("Mailboxes and classes", "mailbox class"),  # -xes, -sses
        ('"C++ compilers"', "c++ compiler"),
        ("Misc programs", "Programs"),
        ("", "  ?! "),  # blank labels collide
    ],
)
def test_labels_that_name_the_same_thing_collide(a, b):
    assert labels_collide(a, b) and labels_collide(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Text editors", "Text editing"),
        ("File systems", "Files"),
        ("C++ compilers", "C compilers"),
        ("Chess engines", "Chess engines for kids"),  # a term more is a different label
    ],
)
def test_different_labels_do_not_collide(a, b):
    assert not labels_collide(a, b)


def test_label_key_stems_lightly_and_keeps_function_words_when_nothing_else():
    assert label_key("Glass, corpus & analysis") == frozenset({"glass", "corpus", "analysis"})
    assert label_key("The Other") == frozenset({"the", "other"})


def test_collision_groups_are_sorted_groups_of_two_or_more():
    labels = {7: "Games", 2: "Mail servers", 3: "games!", 5: "mail server", 4: "Fonts", 9: "Game"}
    assert collision_groups(labels) == [[2, 5], [3, 7, 9]]
    assert collision_groups({1: "a", 2: "b"}) == []


FONT_LABEL = "font, truetype, typeface"


def test_disambiguate_appends_each_clusters_best_keyword_its_siblings_lack():
    keywords = {
        0: ["font", "truetype", "typeface", "dejavu", "serif"],
        1: ["fonts", "truetype", "typeface", "liberation", "serif"],
        2: ["chess", "board", "game"],
    }
    labels = {0: FONT_LABEL, 1: FONT_LABEL, 2: "chess, board, game"}
    out = disambiguate(labels, keywords)
    assert out[0] == Disambiguated(f"{FONT_LABEL}, dejavu", ("dejavu",), False)
    assert out[1] == Disambiguated(f"{FONT_LABEL}, liberation", ("liberation",), False)
    assert out[2] == Disambiguated("chess, board, game")  # collided with none: unchanged


def test_siblings_with_the_same_keywords_never_add_the_same_term():
    same = ["font", "truetype", "typeface", "sans", "serif", "mono"]
    out = disambiguate({0: FONT_LABEL, 1: FONT_LABEL, 2: FONT_LABEL}, dict.fromkeys(range(3), same))
    assert [out[c].added_terms for c in range(3)] == [("sans",), ("serif",), ("mono",)]
    assert len({label_key(r.label) for r in out.values()}) == 3


def test_a_keyword_already_in_a_siblings_label_is_skipped():
    labels = {0: "Text editors", 1: "text editor"}
    keywords = {0: ["editor", "vim", "modal"], 1: ["vim", "emacs", "lisp"]}
    out = disambiguate(labels, keywords, style="parenthesis")
    # 0 takes "vim" first; 1's best keyword "vim" is then in 0's label: it takes "emacs"
    assert out[0].label == "Text editors (vim)" and out[1].label == "text editor (emacs)"


def test_clusters_without_keywords_left_keep_their_label_and_are_reported():
    labels = {0: FONT_LABEL, 1: FONT_LABEL, 2: "Unclassified", 3: "Unclassified"}
    keywords = {0: ["font", "truetype"], 1: ["typeface"], 2: [], 3: []}
    out = disambiguate(labels, keywords)
    assert out[2] == Disambiguated("Unclassified", (), True)
    assert out[3] == Disambiguated("Unclassified", (), True)
    assert out[0].collides and out[1].collides and out[0].label == FONT_LABEL


def test_one_sibling_with_a_keyword_left_is_enough():
    out = disambiguate({0: "Games", 1: "games"}, {0: [], 1: ["chess"]})
    assert out[0] == Disambiguated("Games") and out[1].label == "games, chess"
    assert not out[0].collides and not out[1].collides


def test_disambiguate_stops_at_max_terms_and_reports_what_still_collides():
    # round 1: 0 and 1 collide; 0 adds "y" and then collides with 2 ("x, y")
    labels = {0: "x", 1: "x", 2: "x, y"}
    keywords = {0: ["y", "w"], 1: ["q"], 2: ["v"]}
    capped = disambiguate(labels, keywords, max_terms=1)
    assert capped[0].label == "x, y" and capped[0].collides and capped[2].collides
    assert not capped[1].collides
    two = disambiguate(labels, keywords, max_terms=2)
    assert not any(r.collides for r in two.values())
    assert two[0].label == "x, y, w" and two[2].label == "x, y, v"


def test_disambiguate_is_deterministic_whatever_the_input_order():
    labels = {3: "Games", 1: "games", 2: "Game"}
    keywords = {1: ["chess", "board"], 2: ["chess", "cards"], 3: ["dice", "chess"]}
    forward = disambiguate(labels, keywords)
    backward = disambiguate(dict(reversed(labels.items())), dict(reversed(keywords.items())))
    assert forward == backward
    assert [forward[c].added_terms for c in (1, 2, 3)] == [("chess",), ("cards",), ("dice",)]


# --- phrases, distinctive terms, near-duplicates (issue #14) ---------------------------------

EDITORS = ["a text editor for the console", "text editor with syntax colours", "text editor"]
BOOKS = ["text of a book", "the text, read aloud", "a text reader"]


def test_a_frequent_phrase_more_concentrated_than_its_words_is_kept_and_leads_the_label():
    keywords = class_tfidf(EDITORS + BOOKS, [0, 0, 0, 1, 1, 1])
    assert "text editor" in keywords[0]
    assert keyword_labels(keywords[0])[0].startswith("text editor, ")  # not "editor, text"
    assert not any(" " in term for term in keywords[1])  # no phrase in two of its texts


def test_phrases_are_dropped_when_rare_or_less_concentrated_than_a_word():
    docs = ["open source chess", "open source chess engine", "source code chess"]
    docs += ["open source dice", "open source dice game", "open door"]
    keywords = class_tfidf(docs, [0, 0, 0, 1, 1, 1])
    # "open source" is half in each class, "source" 3 of 5 in class 0, "open" 3 of 5 in 1
    assert "open source" not in keywords[0] + keywords[1]
    assert "chess engine" not in keywords[0]  # in one text only
    assert "source code" not in keywords[0]


def test_phrases_never_span_punctuation_or_stop_words():
    docs = ["editor, text", "editor of text", "editor (text)", "editor; text"]
    keywords = class_tfidf(docs + ["dice game"] * 4, [0] * 4 + [1] * 4)
    assert "editor text" not in keywords[0]
    assert "dice game" in keywords[1]


def test_words_of_few_texts_or_spread_evenly_go_after_distinctive_ones():
    web = ["uwsgi uwsgi uwsgi uwsgi uwsgi proxy", "web proxy server", "http proxy server"]
    web += ["web server cache", "package proxy"]
    other = ["package chess board", "package dice board", "board game package"]
    keywords = class_tfidf(web + other, [0] * 5 + [1] * 3)
    # uwsgi is the most frequent word of class 0 but in one text; package is everywhere
    assert keywords[0][:2] == ["proxy", "server"]
    assert keywords[0].index("uwsgi") > keywords[0].index("web")
    assert keywords[0].index("package") > keywords[0].index("web")
    # with the filters off, the order is plain c-TF-IDF again: uwsgi first
    off = class_tfidf(web + other, [0] * 5 + [1] * 3, min_texts=0, min_text_share=0, min_lift=0)
    assert off[0][0] == "uwsgi"


def test_distinct_terms_skip_near_duplicates_and_let_a_phrase_replace_its_word():
    assert distinct_terms(["editor", "text editor", "text", "emacs"]) == ["text editor", "emacs"]
    assert distinct_terms(["python", "python3", "compile", "compiler", "fonts", "font"]) == [
        "python",
        "compile",
        "fonts",
    ]
    assert distinct_terms(["text", "editor", "text editor", "vim"]) == ["text", "editor", "vim"]
    assert distinct_terms(["free software", "software", "free"]) == ["free software"]


def test_topic_counts_are_the_sum_of_their_clusters_and_keywords_are_deterministic():
    docs = EDITORS + BOOKS + ["chess board game", "board game dice", "card game"]
    clusters = [0, 0, 0, 1, 1, 1, 2, 2, 2]
    _, counts, terms = term_counts(docs, clusters)
    member = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # topic 0 = clusters 0 and 1
    summed = top_terms(member @ counts, terms, [0, 1])
    direct = class_tfidf(docs, [0, 0, 0, 0, 0, 0, 1, 1, 1])
    assert summed == direct
    shuffled = [5, 2, 8, 0, 7, 3, 1, 6, 4]
    again = class_tfidf([docs[i] for i in shuffled], [clusters[i] for i in shuffled])
    assert again == class_tfidf(docs, clusters)


@pytest.mark.parametrize("seed", range(5))
def test_the_first_terms_are_those_of_the_full_sort_ties_included(seed):
    rng = np.random.default_rng(seed)
    n = 400
    first = rng.random(n) < 0.3  # True sorts after False, as "not distinctive" does
    second = -rng.choice([0.5, 0.25, 0.125, 0.0, -0.0], size=n)  # many ties on the score
    names = np.array([f"t{i:03d}" for i in rng.permutation(n)], dtype=object)
    candidates = np.flatnonzero(rng.random(n) < 0.8)
    full = sorted(candidates.tolist(), key=lambda i: (first[i], second[i], names[i]))
    for k in (0, 1, 7, 10, 50, n):
        assert _first(candidates, first, second, names, k) == full[:k]
    assert _first(np.array([], dtype=np.int64), first, second, names, 10) == []
