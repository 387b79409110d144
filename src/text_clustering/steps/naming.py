"""Naming every layer, bottom-up: the clusters, then the topics of level 1, 2, ...

:func:`walk` is the one path both the LLM step (which asks what the cache lacks on the way,
:func:`~text_clustering.steps.llm.ask_llm`) and the naming models (which only read the cache:
:func:`name_clusters`, :func:`name_topics`) take, so the prompts they build and the labels
they decide are the same. The topics under one parent (the top level is one family) share
one prompt that shows per topic the names of its parts (one level down), its keywords and
representatives drawn across its parts; colliding names within a layer are asked again
together, then made distinct (:func:`~text_clustering.naming.name_layer`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pyarrow as pa

from ..clustering import NOISE
from ..config import read_str
from ..naming import Candidate, Layer, name_layer, relabel_requests
from ..prompts import LLMSettings, build_topics_prompt, request_hash
from ..transport import client_from_env
from ..vectors import read_arrow
from .labelling import KEEP_SHARE, settings_key

CLUSTER, TOPIC, RELABEL = "cluster", "topic", "relabel"
NAMES_FIELDS = [
    ("summary_labels", pa.list_(pa.string())),
    ("model_name", pa.string()),
    ("label_source", pa.string()),
    ("label_status", pa.string()),
    ("label_error", pa.string()),
    ("request_hash", pa.string()),
    ("first_labels", pa.list_(pa.string())),
    ("collision_group", pa.int32()),
    ("distinct_by", pa.string()),
    ("added_terms", pa.list_(pa.string())),
    ("relabel_request_hash", pa.string()),
    ("relabel_status", pa.string()),
]
NAMES_SCHEMA = pa.schema([("cluster_label", pa.int32()), *NAMES_FIELDS])
TOPIC_NAMES_SCHEMA = pa.schema(
    [
        ("topic_key", pa.string()),
        ("level", pa.int32()),
        ("topic_id", pa.int32()),
        *NAMES_FIELDS,
        ("user_prompt", pa.string()),
        ("n_examples", pa.int32()),
    ]
)


class Request(NamedTuple):
    """One request to the LLM: its cache key and prompt, how many groups it names, kind and
    level; a topic family's also says which topics it names and which representatives it
    shows (``family``: topic_ids, example_ids, settings_key), so that a later build can keep
    it (:func:`_kept_family`)."""

    request_hash: str
    user_prompt: str
    n_groups: int
    kind: str
    level: int
    family: Mapping[str, Any] | None = None


Ask = Callable[[list[Request]], None]


@dataclass
class NamingInputs:
    """What naming reads, by id: level 0 from the cluster models, levels 1.. from the topic
    models (empty without a hierarchy)."""

    prompts: dict[int, tuple[str, str, int]]  # cluster -> (request_hash, prompt, n_examples)
    keywords: dict[tuple[int, int], Mapping[str, Any]]  # (level, id) -> keyword row
    examples: dict[tuple[int, int], list[str]]  # (level, id) -> representatives' texts
    tree: list[dict[str, Any]] = field(default_factory=list)  # int_topic_tree rows
    example_ids: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # their text_ids

    def levels(self) -> int:
        return 1 + max((r["level"] for r in self.tree), default=0)


def read_inputs(
    prompts: Any,
    keywords: Any,
    representatives: Any,
    tree: Any = None,
    topic_keywords: Any = None,
    topic_representatives: Any = None,
) -> NamingInputs:
    """:class:`NamingInputs` from the models' relations (the topic ones optional)."""
    inputs = NamingInputs(
        prompts={
            r["cluster_label"]: (r["request_hash"], r["user_prompt"], r["n_examples"])
            for r in read_arrow(prompts).to_pylist()
        },
        keywords={(0, r["cluster_label"]): r for r in read_arrow(keywords).to_pylist()},
        examples=_examples(representatives, "0 as level, cluster_label as id")[0],
    )
    if tree is not None:
        inputs.tree = read_arrow(tree).to_pylist()
        for r in read_arrow(topic_keywords).to_pylist():
            inputs.keywords[(r["level"], r["topic_id"])] = r
        texts, ids = _examples(topic_representatives, "level, topic_id as id")
        inputs.examples.update(texts)
        inputs.example_ids.update(ids)
    return inputs


def _examples(
    representatives: Any, key: str
) -> tuple[dict[tuple[int, int], list[str]], dict[tuple[int, int], list[str]]]:
    """(level, id) -> the representatives' texts, most central first (noise excluded), and
    their text_ids."""
    columns = f"{key}, representative_rank, text, text_id"
    rows = read_arrow(representatives.select(columns)).to_pylist()
    rows.sort(key=lambda r: (r["level"], r["id"], r["representative_rank"]))
    texts: dict[tuple[int, int], list[str]] = {}
    ids: dict[tuple[int, int], list[str]] = {}
    for r in rows:
        if r["id"] != NOISE:
            texts.setdefault((r["level"], r["id"]), []).append(r["text"] or "")
            ids.setdefault((r["level"], r["id"]), []).append(r["text_id"])
    return texts, ids


def walk(
    inputs: NamingInputs,
    replies: Mapping[str, Mapping[str, Any]],
    settings: LLMSettings,
    *,
    online: bool,
    default_label: str,
    ask: Ask | None = None,
    max_level: int | None = None,
) -> list[dict[int, dict[str, Any]]]:
    """Name level 0 (the clusters), then every level of topics up to ``max_level`` (default:
    all): per level, its prompts (``ask`` asks those ``replies`` lacks: one per cluster at
    level 0, one per family of sibling topics above), the joint prompts of its colliding
    first labels (asked too), then :func:`name_layer`. ``replies`` (request_hash -> reply
    row) must hold what ``ask`` got. Returns the names per level, a topic's row also with
    its ``user_prompt`` and ``n_examples``."""
    top = inputs.levels() - 1 if max_level is None else min(max_level, inputs.levels() - 1)
    names: list[dict[int, dict[str, Any]]] = []
    for level in range(top + 1):
        ids = sorted({i for (lv, i) in inputs.keywords if lv == level})
        if level == 0:
            prompts = {c: (h, p, shown, 0) for c, (h, p, shown) in inputs.prompts.items()}
            requests = [
                Request(h, p, 1, CLUSTER, 0) for _, (h, p, _) in sorted(inputs.prompts.items())
            ]
        else:
            prompts, requests = _topic_prompts(inputs, level, names[-1], settings, replies)
        if ask is not None:
            ask(requests)
            first = {i: labels for i in ids if (labels := _first(replies, prompts.get(i)))}
            examples = {i: inputs.examples.get((level, i), []) for i in ids}
            relabels = relabel_requests(first, examples, settings)
            ask(
                [
                    Request(g.request_hash, g.user_prompt, len(g.group), RELABEL, level)
                    for g in relabels
                ]
            )
        layer = Layer(
            level,
            {
                i: Candidate(
                    prompts[i][0] if i in prompts else None,
                    inputs.keywords[(level, i)]["keyword_labels"],
                    inputs.keywords[(level, i)]["top_keywords"] or [],
                    prompts[i][3] if i in prompts else 0,
                )
                for i in ids
            },
            {i: inputs.examples.get((level, i), []) for i in ids},
        )
        named = name_layer(layer, replies, settings, online=online, default_label=default_label)
        for i, row in named.items():
            if level > 0 and i in prompts:
                row.update(user_prompt=prompts[i][1], n_examples=prompts[i][2])
        names.append(named)
    return names


def _first(
    replies: Mapping[str, Mapping[str, Any]], prompt: tuple[str, str, int, int] | None
) -> list[str] | None:
    """The first labels an ok reply gave one member of a prompt (None without them)."""
    reply = replies.get(prompt[0]) if prompt else None
    if prompt is None or reply is None or reply.get("status") != "ok":
        return None
    labels = reply["labels"]
    return list(labels[prompt[3]]) if len(labels) > prompt[3] else None


def _topic_prompts(
    inputs: NamingInputs,
    level: int,
    below: Mapping[int, Mapping[str, Any]],
    settings: LLMSettings,
    replies: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[int, tuple[str, str, int, int]], list[Request]]:
    """The prompts of the topics of ``level``: one per family of siblings (the topics under
    one parent; the top level is one family), showing per topic its parts' names (largest
    first), keywords and representatives. A family whose prompt has no reply yet keeps the
    prompt of an earlier build when that one names the same topics and still shows enough of
    their representatives (:func:`_kept_family`): after a refit, topics that kept their ids
    and barely moved are answered by the reply cache. Returns per topic ``(request_hash,
    user_prompt, n_examples, its place in the reply)`` and the requests to ask."""
    parts: dict[int, list[tuple[int, int]]] = {}
    families: dict[Any, list[tuple[int, int]]] = {}
    for r in inputs.tree:
        if r["topic_id"] == NOISE:
            continue
        if r["level"] == level - 1 and r["parent_topic_id"] is not None:
            parts.setdefault(r["parent_topic_id"], []).append((-r["n_fit_texts"], r["topic_id"]))
        if r["level"] == level:
            families.setdefault(r["parent_topic_id"], []).append((-r["n_fit_texts"], r["topic_id"]))
    prompts: dict[int, tuple[str, str, int, int]] = {}
    requests: list[Request] = []
    key_of_settings = settings_key(settings)
    for _, members in sorted(families.items(), key=lambda f: min(f[1])):
        topics = [t for _, t in sorted(members)]
        siblings = [
            (
                [below[c]["summary_labels"][0] for _, c in sorted(parts.get(t, [])) if c in below],
                (inputs.keywords.get((level, t), {}).get("top_keywords") or [])[:10],
                inputs.examples.get((level, t), []),
            )
            for t in topics
        ]
        prompt, shown = build_topics_prompt(siblings, settings)
        key = request_hash(prompt, settings)
        ids = [inputs.example_ids.get((level, t), []) for t in topics]
        family: Mapping[str, Any] = {
            "topic_ids": topics,
            "example_ids": [i[:n] for i, n in zip(ids, shown, strict=True)],
            "settings_key": key_of_settings,
        }
        if key not in replies:
            kept = _kept_family(replies, level, topics, ids, key_of_settings)
            if kept is not None:
                key, prompt = kept["request_hash"], kept["user_prompt"]
                shown = [len(i) for i in kept["example_ids"]]
                family = {**family, "example_ids": kept["example_ids"]}
        requests.append(Request(key, prompt, len(topics), TOPIC, level, family))
        for rank, (topic, n_examples) in enumerate(zip(topics, shown, strict=True)):
            prompts[topic] = (key, prompt, n_examples, rank)
    return prompts, requests


def _kept_family(
    replies: Mapping[str, Mapping[str, Any]],
    level: int,
    topics: Sequence[int],
    ids: Sequence[Sequence[str]],
    key_of_settings: str,
) -> Mapping[str, Any] | None:
    """An earlier build's ok reply to a prompt for the same family (the same topic ids, in
    the same order, at ``level``, made with the same settings) that still shows at least
    :data:`~text_clustering.steps.labelling.KEEP_SHARE` of each topic's current
    representatives ``ids``; the one answered last (then the smallest hash) when several do."""
    found = [
        {**r, "request_hash": h}
        for h, r in replies.items()
        if r.get("kind") == TOPIC
        and r.get("level") == level
        and r.get("status") == "ok"
        and list(r.get("topic_ids") or []) == list(topics)
        and len(r.get("example_ids") or []) == len(topics)
        and r.get("settings_key") == key_of_settings
        and r.get("user_prompt")
        and all(
            len(set(old) & set(now)) >= KEEP_SHARE * len(old)
            for old, now in zip(r.get("example_ids") or [], ids, strict=True)
        )
    ]
    if not found:
        return None
    return max(found, key=lambda r: (str(r.get("answered_at")), r["request_hash"]))


def name_clusters(
    keywords: Any, prompts: Any, replies: Any, representatives: Any, config: Mapping
) -> pa.Table:
    """int_clusters_named: every cluster, noise included, with its labels and where they come
    from (``label_source``: keywords / llm / default / noise), decided here once."""
    settings, default_label = _settings(config)
    names = walk(
        read_inputs(prompts, keywords, representatives),
        _replies(replies),
        settings,
        online=client_from_env() is not None,  # OPENAI_API_KEY / OPENAI_BASE_URL
        default_label=default_label,
        max_level=0,
    )[0]
    rows = [{"cluster_label": c, **row} for c, row in names.items()]
    return pa.Table.from_pylist(rows, schema=NAMES_SCHEMA)


def name_topics(
    prompts: Any,
    keywords: Any,
    representatives: Any,
    tree: Any,
    topic_keywords: Any,
    topic_representatives: Any,
    replies: Any,
    config: Mapping,
) -> pa.Table:
    """int_topics_named: every topic of levels 1.., noise included, named bottom-up."""
    settings, default_label = _settings(config)
    inputs = read_inputs(
        prompts, keywords, representatives, tree, topic_keywords, topic_representatives
    )
    names = walk(
        inputs,
        _replies(replies),
        settings,
        online=client_from_env() is not None,
        default_label=default_label,
    )
    rows = [
        {"topic_key": f"{level}:{t}", "level": level, "topic_id": t, **row}
        for level, named in enumerate(names)
        if level > 0
        for t, row in named.items()
    ]
    return pa.Table.from_pylist(rows, schema=TOPIC_NAMES_SCHEMA)


def _settings(config: Mapping[str, Any]) -> tuple[LLMSettings, str]:
    default_label = read_str("default_label", config.get("default_label"))
    assert default_label is not None
    return LLMSettings.from_vars(config), default_label


def _replies(replies: Any) -> dict[str, dict[str, Any]]:
    columns = (
        "request_hash, status, labels, model_name, error, kind, level, user_prompt, "
        "topic_ids, example_ids, settings_key, answered_at"
    )
    return {r["request_hash"]: r for r in read_arrow(replies.select(columns)).to_pylist()}
