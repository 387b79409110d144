"""The rules of dbt-project-evaluator (dbt-labs/dbt-project-evaluator, models/marts/*) that this
project keeps, checked on the manifest of `dbt parse` (seconds; the package itself needs the
dbt hub and a build of its own).

An exception is stated where the rule is broken, in the model's or source's
`meta: evaluator_exceptions: {<rule>: ...}`, with its reason; an exception nothing needs any
more fails the test too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import PurePosixPath

import pytest
from conftest import REPO
from dbt_helpers import ok, run_dbt

# The layers (a model's folder: fqn[1]) and the prefixes of their models' names.
PREFIXES = {
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts": ("fct_", "dim_"),
    "reports": ("rpt_",),
}
REJOINING = "fct_rejoining_of_upstream_concepts"
SOURCE_FANOUT = "fct_source_fanout"
FRESHNESS = "fct_sources_without_freshness"

# Rejoins (parent, model in between, child) whose fix is a change to files this layer does
# not own, with the change proposed. Each must still be found: remove it once fixed.
PENDING_REJOINS: dict[tuple[str, str, str], str] = {}


class Project:
    """The models, sources and exposures of a manifest, by name, and the graph between them
    (tests and exposures left out, as the evaluator does)."""

    def __init__(self, manifest: dict):
        nodes = manifest["nodes"]
        self.models = {n["name"]: n for n in nodes.values() if n["resource_type"] == "model"}
        self.sources = {f"{s['source_name']}.{s['name']}": s for s in manifest["sources"].values()}
        # seeds are raw inputs too: only staging reads them, from models/staging/seeds/
        self.seeds = {
            f"seeds.{n['name']}": n for n in nodes.values() if n["resource_type"] == "seed"
        }
        self.exposures = list(manifest["exposures"].values())
        self.tests = [n for n in nodes.values() if n["resource_type"] == "test"]
        names = {n["unique_id"]: n["name"] for n in self.models.values()}
        names |= {s["unique_id"]: key for key, s in (self.sources | self.seeds).items()}
        self.parents: dict[str, set[str]] = {name: set() for name in self.models}
        self.children: dict[str, set[str]] = defaultdict(set)
        for model in self.models.values():
            for parent in model["depends_on"]["nodes"]:
                if parent in names:
                    self.parents[model["name"]].add(names[parent])
                    self.children[names[parent]].add(model["name"])

    def layer(self, model: str) -> str:
        return self.models[model]["fqn"][1]

    def is_source(self, name: str) -> bool:
        return name in self.sources or name in self.seeds


def rejoins(children: dict[str, set[str]]) -> set[tuple[str, str, str]]:
    """(A, B, C) with A -> B -> C and A -> C where B has no child but C."""
    return {
        (a, b, c)
        for a, kids in children.items()
        for b in kids
        for c in children.get(b, ())
        if len(children[b]) == 1 and c in kids
    }


def exceptions(node: dict, rule: str):
    """The exceptions to `rule` a node states: a reason (for rejoins, a list of them)."""
    meta = node.get("config", {}).get("meta") or node.get("meta") or {}
    return meta.get("evaluator_exceptions", {}).get(rule) or {}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Project:
    work = tmp_path_factory.mktemp("parse")
    ok(run_dbt(work, work / "parse.duckdb", "parse"))
    return Project(json.loads((work / "target" / "manifest.json").read_text()))


def test_every_model_has_a_primary_key_test(project):
    """fct_missing_primary_key_tests: one column with both `unique` and `not_null`."""
    tested = defaultdict(set)
    for test in project.tests:
        name = (test.get("test_metadata") or {}).get("name")
        if name in ("unique", "not_null") and test.get("attached_node"):
            tested[(test["attached_node"], test["column_name"])].add(name)
    keyed = {node for (node, _), names in tested.items() if names == {"unique", "not_null"}}
    missing = [name for name, model in project.models.items() if model["unique_id"] not in keyed]
    assert missing == []


def test_every_model_source_and_column_is_described(project):
    """fct_undocumented_models, fct_undocumented_sources, fct_undocumented_source_tables,
    and every column a model declares."""
    undescribed = [name for name, model in project.models.items() if not model["columns"]]
    for name, node in [*project.models.items(), *project.sources.items()]:
        if not node["description"].strip():
            undescribed.append(name)
        undescribed += [
            f"{name}.{column}"
            for column, spec in node["columns"].items()
            if not spec["description"].strip()
        ]
    undescribed += [name for name, s in project.sources.items() if not s["source_description"]]
    assert undescribed == []


def test_marts_and_only_marts_are_public_with_enforced_contracts(project):
    """fct_public_models_without_contract, fct_undocumented_public_models: a contract states
    every column's data_type."""
    public = {name for name, m in project.models.items() if m["access"] == "public"}
    assert public == {name for name in project.models if project.layer(name) == "marts"}
    for name in public:
        model = project.models[name]
        assert model["config"]["contract"]["enforced"], name
        untyped = [c for c, spec in model["columns"].items() if not spec.get("data_type")]
        assert untyped == [], name


def test_exposures_depend_only_on_public_models(project):
    """fct_exposures_dependent_on_private_models."""
    public = {m["unique_id"] for m in project.models.values() if m["access"] == "public"}
    wrong = [
        (exposure["name"], parent)
        for exposure in project.exposures
        for parent in exposure["depends_on"]["nodes"]
        if parent not in public
    ]
    assert wrong == [] and project.exposures


def test_no_root_models(project):
    """fct_root_models: every model reads a source or another model."""
    assert [name for name, parents in project.parents.items() if not parents] == []


def test_sources_are_read_by_staging_only_and_staging_reads_sources_only(project):
    """fct_marts_or_intermediate_dependent_on_source, fct_direct_join_to_source,
    fct_staging_dependent_on_staging, fct_staging_dependent_on_marts_or_intermediate."""
    wrong = [
        (parent, name)
        for name, parents in project.parents.items()
        for parent in parents
        if project.is_source(parent) != (project.layer(name) == "staging")
    ]
    assert wrong == []


def test_source_fanout_only_where_stated(project):
    """fct_source_fanout: one staging model per source table, unless a reason is stated."""
    fanned = {name for name in project.sources if len(project.children[name]) > 1}
    stated = {name for name, s in project.sources.items() if exceptions(s, SOURCE_FANOUT)}
    assert fanned == stated


def test_sources_have_a_freshness_check_or_state_why_not(project):
    """fct_sources_without_freshness."""
    unchecked = {
        name
        for name, source in project.sources.items()
        if not any(
            ((source["freshness"] or {}).get(k) or {}).get("count")
            for k in ("warn_after", "error_after")
        )
    }
    stated = {name for name, s in project.sources.items() if exceptions(s, FRESHNESS)}
    assert unchecked == stated


def test_model_names_match_their_folder(project):
    """fct_model_naming_conventions, fct_model_directories (non-staging)."""
    wrong = [
        name
        for name in project.models
        if not name.startswith(PREFIXES.get(project.layer(name), ()))  # () matches nothing
    ]
    assert wrong == []


def test_staging_models_and_sources_live_in_their_source_folder(project):
    """fct_model_directories (staging), fct_source_directories: models/staging/<source>/."""
    wrong = []
    for name, model in project.models.items():
        if project.layer(name) == "staging":
            folder = PurePosixPath(model["original_file_path"]).parent
            for parent in filter(project.is_source, project.parents[name]):
                if folder != PurePosixPath("models/staging", parent.split(".")[0]):
                    wrong.append((name, str(folder)))
    for name, source in project.sources.items():
        folder = PurePosixPath(source["original_file_path"]).parent
        if folder != PurePosixPath("models/staging", source["source_name"]):
            wrong.append((name, str(folder)))
    assert wrong == []


def test_no_rejoining_of_upstream_concepts_but_the_stated_exceptions(project):
    """fct_rejoining_of_upstream_concepts: A -> B -> C and A -> C where B has no other child.
    C states its exceptions ({parent: A, through: B, reason}); the pending ones wait for a
    change elsewhere."""
    found = rejoins(project.children)
    stated = {
        (exception["parent"], exception["through"], child)
        for child, model in project.models.items()
        for exception in exceptions(model, REJOINING)
        if exception["reason"].strip()
    }
    assert found - stated - set(PENDING_REJOINS) == set()
    assert (stated | set(PENDING_REJOINS)) - found == set(), "no longer found: remove it"


def test_the_rejoin_rule_is_the_evaluators():
    """A -> B -> C with A -> C is a finding only while B feeds nothing but C."""
    assert rejoins({"a": {"b", "c"}, "b": {"c"}}) == {("a", "b", "c")}
    assert rejoins({"a": {"b", "c"}, "b": {"c", "d"}}) == set()
    assert rejoins({"a": {"b"}, "b": {"c"}}) == set()


def test_usage_tracking_is_off_in_the_project_itself():
    # not only through the Makefile's DO_NOT_TRACK: a plain `dbt docs generate && dbt docs
    # serve` must write a docs site that loads no tracking script from the internet
    import yaml

    config = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    assert config["flags"]["send_anonymous_usage_stats"] is False
