"""The surfaces fuzzed, each as its routes and a strategy for what a well-behaved client sends there
(built from the real request shapes: docs/translation.md, docs/images.md, docs/midjourney.md,
docs/admin-api.md). Model names point at the fuzz gateway's channels (tests/fuzz/conftest.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fuzz.conftest import KEY
from tests.fuzz.hostile import Route, Surface
from tests.helpers.gateway import ADMIN_KEY

text = st.text(max_size=30)
small = st.integers(min_value=1, max_value=64)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


def _with(required: dict[str, st.SearchStrategy[Any]], **optional: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(required, optional=optional)


# --- OpenAI -------------------------------------------------------------------------------------

_openai_content = st.one_of(text, st.lists(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.just("image_url"),
                           "image_url": st.fixed_dictionaries({"url": st.just("data:image/png;base64,iVBORw0KGgo=")})}),
), min_size=1, max_size=2))
_openai_message = _with({"role": st.sampled_from(["user", "system", "assistant", "developer"]),
                         "content": _openai_content})
_tool = st.fixed_dictionaries({"type": st.just("function"), "function": st.fixed_dictionaries(
    {"name": st.sampled_from(["get_weather", "f"]), "parameters": st.just({"type": "object", "properties": {}})})})
chat_body = _with(
    {"model": st.sampled_from(["mock-gpt", "fake-gpt", "faulty-gpt", "fake-claude", "fake-gemini"]),
     "messages": st.lists(_openai_message, min_size=1, max_size=3)},
    stream=st.booleans(), max_tokens=small, temperature=st.floats(0, 2), n=st.just(1),
    tools=st.lists(_tool, max_size=1), stream_options=st.just({"include_usage": True}), user=text,
    seed=st.integers(0, 99), stop=st.lists(text, max_size=2),
    response_format=st.just({"type": "json_object"}), max_completion_tokens=small,
)
embeddings_body = _with(
    {"model": st.sampled_from(["mock-embed", "fake-gpt", "fake-gemini"]),
     "input": st.one_of(text.filter(bool), st.lists(text.filter(bool), min_size=1, max_size=3),
                        st.lists(st.integers(0, 50_000), min_size=1, max_size=5))},
    encoding_format=st.sampled_from(["float", "base64"]), dimensions=small, user=text,
)
OPENAI = Surface("openai", "openai", (
    Route(b"POST", b"/v1/chat/completions", chat_body), Route(b"POST", b"/chat/completions", chat_body),
    Route(b"POST", b"/v1/embeddings", embeddings_body),
), KEY, faulty=frozenset({"faulty-gpt", "err200-gpt"}), own_unknown_paths=True)

# --- Anthropic ----------------------------------------------------------------------------------

_anthropic_block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.just("image"), "source": st.fixed_dictionaries(
        {"type": st.just("base64"), "media_type": st.just("image/png"), "data": st.just("iVBORw0KGgo=")})}),
)
_anthropic_message = _with({"role": st.sampled_from(["user", "assistant"]),
                            "content": st.one_of(text, st.lists(_anthropic_block, min_size=1, max_size=2))})
messages_body = _with(
    {"model": st.sampled_from(["mock-gpt", "fake-claude", "faulty-claude", "fake-gpt"]), "max_tokens": small,
     "messages": st.lists(_anthropic_message, min_size=1, max_size=3)},
    system=st.one_of(text, st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=1)),
    stream=st.booleans(), temperature=st.floats(0, 1), stop_sequences=st.lists(text, max_size=2),
    thinking=st.just({"type": "enabled", "budget_tokens": 1024}), metadata=st.just({"user_id": "u"}),
    tools=st.lists(st.fixed_dictionaries({"name": st.just("f"), "input_schema": st.just({"type": "object"})}),
                   max_size=1),
)
ANTHROPIC = Surface("anthropic", "anthropic", (
    Route(b"POST", b"/v1/messages", messages_body), Route(b"POST", b"/v1/messages/count_tokens", messages_body),
), KEY, credential=b"x-api-key", faulty=frozenset({"faulty-claude", "err200-claude"}))

# --- Gemini -------------------------------------------------------------------------------------

_part = st.one_of(st.fixed_dictionaries({"text": text}), st.fixed_dictionaries({"inlineData": st.fixed_dictionaries(
    {"mimeType": st.just("image/png"), "data": st.just("iVBORw0KGgo=")})}))
generate_body = _with(
    {"contents": st.lists(_with({"parts": st.lists(_part, min_size=1, max_size=2)},
                                role=st.sampled_from(["user", "model"])), min_size=1, max_size=3)},
    generationConfig=_optional(maxOutputTokens=small, temperature=st.floats(0, 2), candidateCount=st.just(1),
                               stopSequences=st.lists(text, max_size=2), responseMimeType=st.just("text/plain")),
    systemInstruction=st.fixed_dictionaries({"parts": st.lists(st.fixed_dictionaries({"text": text}), min_size=1,
                                                                max_size=1)}),
    safetySettings=st.just([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]),
)
embed_body = _with({"content": st.fixed_dictionaries({"parts": st.lists(st.fixed_dictionaries({"text": text}),
                                                                          min_size=1, max_size=2)})},
                   taskType=st.just("RETRIEVAL_QUERY"), outputDimensionality=small)
GEMINI = Surface("gemini", "gemini", tuple(
    Route(b"POST", f"/{version}/models/{model}:{action}".encode(), body)
    for version in ("v1beta", "v1") for model in ("mock-gpt", "fake-gemini", "faulty-gemini", "fake-claude")
    for action, body in (("generateContent", generate_body), ("streamGenerateContent?alt=sse", generate_body),
                         ("countTokens", generate_body), ("embedContent", embed_body))
), KEY, credential=b"x-goog-api-key", faulty=frozenset({"faulty-gemini", "err200-gemini"}))

# --- Midjourney ---------------------------------------------------------------------------------

_b64_image = st.just("data:image/png;base64,iVBORw0KGgo=")
MIDJOURNEY = Surface("midjourney", "midjourney", (
    Route(b"POST", b"/mj/submit/imagine", _with({"prompt": text.filter(bool)},
                                               base64Array=st.lists(_b64_image, max_size=1), state=text,
                                               botType=st.sampled_from(["MID_JOURNEY", "NIJI_JOURNEY"]),
                                               notifyHook=st.just("https://hooks.example.com/x"))),
    Route(b"POST", b"/mj/submit/action", _with({"taskId": st.from_regex(r"[0-9]{1,19}", fullmatch=True),
                                               "customId": st.just("MJ::JOB::upsample::1::abc")}, state=text)),
    Route(b"POST", b"/mj/submit/blend", _with({"base64Array": st.lists(_b64_image, min_size=2, max_size=3)},
                                             dimensions=st.sampled_from(["SQUARE", "PORTRAIT", "LANDSCAPE"]))),
    Route(b"POST", b"/mj/submit/describe", _with({"base64": _b64_image})),
    Route(b"POST", b"/mj/submit/modal", _with({"taskId": st.just("1"), "prompt": text})),
    Route(b"POST", b"/mj/task/list-by-condition", _with({"ids": st.lists(text, max_size=3)})),
    Route(b"POST", b"/mj-fast/mj/submit/imagine", _with({"prompt": text.filter(bool)})),
), KEY, credential=b"mj-api-secret")

# --- images (multipart) --------------------------------------------------------------------------
# Multipart bodies are built by tests/fuzz/test_images.py; this surface describes the JSON routes.

generations_body = _with({"model": st.sampled_from(["mock-image", "dall-e-2", "gpt-image-1", "fake-gpt"]),
                          "prompt": text.filter(bool)},
                         n=st.integers(1, 2), size=st.sampled_from(["256x256", "1024x1024", "auto"]),
                         quality=st.sampled_from(["low", "standard", "hd"]), response_format=st.sampled_from(
                             ["url", "b64_json"]))
IMAGES_JSON = Surface("images", "openai", (
    Route(b"POST", b"/v1/images/generations", generations_body),
    Route(b"POST", b"/v1/images/generations?async=true", generations_body),
), KEY, own_unknown_paths=True)

# --- admin --------------------------------------------------------------------------------------

_key_body = _optional(name=text.filter(str.strip), quota_usd=st.sampled_from(["1.5", 2, None]), models=st.just(["*"]),
                      ip_allow=st.just(["10.0.0.0/8"]), expires_at=st.integers(0, 2**31), enabled=st.booleans())
_channel_body = _optional(name=text.filter(str.strip), type=st.just("mock"), models=st.lists(text, max_size=2),
                          model_map=st.just({"a": "b"}), priority=st.integers(-5, 5), weight=st.integers(0, 5),
                          enabled=st.booleans(), options=st.just({}), base_url=st.just(""))
_price_body = _optional(input=st.sampled_from(["1", 2, "0.000000001"]), output=st.just("3"),
                        per_call=st.just("0.5"), per_image=st.just({"default": "0.04"}))
ADMIN = Surface("admin", "admin", (
    Route(b"POST", b"/api/keys", _key_body), Route(b"PATCH", b"/api/keys/2", _key_body),
    Route(b"POST", b"/api/channels", _channel_body), Route(b"PATCH", b"/api/channels/1", _channel_body),
    Route(b"PUT", b"/api/prices/fuzz-model-*", _price_body), Route(b"PUT", b"/api/prices/a%2Fb", _price_body),
    Route(b"GET", b"/api/usage?limit=5&key_id=1", st.just({})), Route(b"GET", b"/api/usage/summary?group_by=model",
                                                                      st.just({})),
    Route(b"GET", b"/api/keys", st.just({})), Route(b"DELETE", b"/api/prices/nothing-here", st.just({})),
), ADMIN_KEY, own_unknown_paths=True)
