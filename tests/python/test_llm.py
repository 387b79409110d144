import pytest
from fake_openai import MODEL_REPORTED

from text_clustering import LLMLabeller, client_from_env
from text_clustering.llm import build_prompt, clean_label, parse_labels, response_schema


def test_prompt_numbers_truncates_and_asks_for_n_labels():
    prompt = build_prompt(
        ["first text", "x" * 50], n=2, query_title="Personas", max_example_chars=10
    )
    assert "## Personas" in prompt
    assert "1. first text" in prompt
    assert "2. xxxxxxxxx…" in prompt
    assert "exactly 2 distinct label" in prompt and '{"labels": ["label 1", "label 2"]}' in prompt


def test_schema_requires_exactly_n_labels():
    schema = response_schema(3)["json_schema"]["schema"]["properties"]["labels"]
    assert schema["minItems"] == schema["maxItems"] == 3


@pytest.mark.parametrize(
    "content",
    [
        '{"labels": ["Text editors"]}',
        'Sure!\n```json\n{"labels": ["Text editors"]}\n```',
        'Here: {"labels": ["  \\"Text editors.\\"  "]} hope it helps',
    ],
)
def test_parse_labels_is_lenient_about_wrapping(content):
    assert parse_labels(content, 1) == ["Text editors"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "empty reply"),
        ("no json here", "no JSON object"),
        ('{"labels": ["a",]}', "malformed JSON"),
        ('{"label": "a"}', 'no "labels" list'),
        ('{"labels": ["a", "b"]}', "expected 1 non-empty labels, got 2"),
        ('{"labels": ["  "]}', "expected 1 non-empty labels, got 0"),
    ],
)
def test_parse_labels_says_what_is_wrong(content, reason):
    with pytest.raises(ValueError, match=reason):
        parse_labels(content, 1)


def test_clean_label_strips_markup_newlines_and_caps_length():
    assert clean_label("**Bold**\n`label`") == "Bold label"
    assert len(clean_label("word " * 100)) == 80


def test_client_from_env_needs_a_key_or_a_base_url(monkeypatch, no_llm_env):
    assert client_from_env() is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert client_from_env() is not None


def labeller(url, **kwargs):
    import openai

    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0, timeout=5)
    return LLMLabeller(client=client, model="asked-model", **kwargs)


def test_labeller_sends_the_examples_with_a_schema_and_reads_the_reply(llm_server):
    url, state = llm_server
    result = labeller(url, n=2).label(["editor vim editor", "emacs editor"])
    assert result.status == "ok"
    assert result.labels == ["editor texts", "emacs texts"]
    assert result.model_name == MODEL_REPORTED  # the model the endpoint says answered
    request = state.requests[0]
    assert (
        request["response_format"]["json_schema"]["schema"]["properties"]["labels"]["maxItems"] == 2
    )
    assert request["temperature"] == 0 and request["seed"] == 42
    assert "1. editor vim editor" in request["messages"][-1]["content"]


def test_labeller_falls_back_to_plain_json_when_response_format_is_rejected(llm_server):
    url, state = llm_server
    state.reject_response_format = True
    tool = labeller(url)
    first = tool.label(["chess board chess"])
    second = tool.label(["music audio music"])
    assert (first.status, first.labels) == ("ok", ["chess texts"])
    assert second.labels == ["music texts"]
    # one rejected call, then plain calls only: the fallback is remembered
    assert ["response_format" in r for r in state.requests] == [True, False, False]


def test_labeller_records_failure_instead_of_raising(llm_server):
    url, state = llm_server
    state.malformed = True
    result = labeller(url, max_attempts=2).label(["anything here"])
    assert result.status == "failed" and result.labels == []
    assert "invalid reply" in result.error and result.attempts == 2
    assert state.calls == 2


def test_labeller_records_http_errors(llm_server):
    url, state = llm_server
    state.status = 503
    result = labeller(url, max_attempts=1).label(["anything here"])
    assert result.status == "failed"
    assert "InternalServerError" in result.error or "503" in result.error
