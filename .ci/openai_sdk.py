"""The OpenAI-compatible face checked with the official OpenAI Python SDK, unchanged,
against a running server (mock model, the catalog book 三体). Usage: openai_sdk.py BASE_URL
"""
import json
import sys
import urllib.request

import openai
from openai import OpenAI

BASE = sys.argv[1].rstrip("/")
SANTI = "9787536692930"


def call(path, body, token=None):
    request = urllib.request.Request(
        BASE + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request) as response:
        return json.load(response)


token = call("/api/auth/register/", {"username": "sdk_user", "password": "sdk-password-1"})["token"]
call("/api/user/collections/", {"isbn": SANTI}, token)
key = call("/api/user/api-keys/", {"name": "python sdk"}, token)["key"]
assert key.startswith("rbk_"), key

client = OpenAI(base_url=BASE + "/v1", api_key=key, max_retries=0)
models = list(client.models.list())
ids = [model.id for model in models]
assert ids == [SANTI, SANTI + "@author"], ids
assert [model.model_extra.get("name") for model in models] == ["三体", "三体 · 作者"], models
assert client.models.retrieve("978-7-5366-9293-0@author").id == SANTI + "@author"

answer = client.chat.completions.create(
    model=SANTI + "@author",
    messages=[
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "你为什么写这本书？"},
    ],
    max_tokens=200,
    temperature=0.5,
)
assert answer.object == "chat.completion", answer
assert "你为什么写这本书" in answer.choices[0].message.content, answer
assert answer.choices[0].finish_reason == "stop"
assert answer.usage.total_tokens > 0

text, usage = "", None
for chunk in client.chat.completions.create(
    model=SANTI,
    stream=True,
    stream_options={"include_usage": True},
    messages=[{"role": "user", "content": "Who wrote it?"}],
):
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        text += choice.delta.content or ""
assert "Who wrote it?" in text, text
assert usage and usage.total_tokens > 0, usage

# Tools pass through to the (mock) model, which calls the one demanded; the call comes
# back in the SDK's types, streamed and not, and the tool's result reaches the model.
lookup = {"type": "function", "function": {"name": "lookup", "description": "Looks a word up",
          "parameters": {"type": "object", "properties": {"question": {"type": "string"}}}}}
asked = [{"role": "user", "content": "查一下智子"}]
called = client.chat.completions.create(model=SANTI, messages=asked, tools=[lookup], tool_choice="required")
assert called.choices[0].finish_reason == "tool_calls", called
call_ = called.choices[0].message.tool_calls[0]
assert call_.function.name == "lookup" and call_.id, call_
assert json.loads(call_.function.arguments) == {"question": "查一下智子"}, call_
pieces, ids = "", set()
for chunk in client.chat.completions.create(
    model=SANTI, messages=asked, tools=[lookup], stream=True,
    tool_choice={"type": "function", "function": {"name": "lookup"}},
):
    for choice in chunk.choices:
        for piece in choice.delta.tool_calls or []:
            pieces += piece.function.arguments or ""
            ids.add(piece.id) if piece.id else None
assert json.loads(pieces) == {"question": "查一下智子"} and len(ids) == 1, (pieces, ids)
followed = client.chat.completions.create(model=SANTI, tools=[lookup], messages=asked + [
    called.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call_.id, "content": "智子：质子计算机"},
])
assert "智子：质子计算机" in followed.choices[0].message.content, followed

try:
    client.chat.completions.create(model="9780000000002", messages=[{"role": "user", "content": "?"}])
    raise SystemExit("an unknown book must fail")
except openai.NotFoundError as err:
    assert err.code == "model_not_found", err
try:
    OpenAI(base_url=BASE + "/v1", api_key="rbk_wrong", max_retries=0).models.list()
    raise SystemExit("a wrong key must fail")
except openai.AuthenticationError:
    pass
# The Responses API: plain, followed up, streamed, retrieved, deleted.
first = client.responses.create(
    model=SANTI + "@author", input="你为什么写这本书？", instructions="Answer in one sentence."
)
assert first.id.startswith("resp_") and first.status == "completed", first
assert "你为什么写这本书" in first.output_text, first.output_text
assert first.usage.total_tokens > 0, first.usage
second = client.responses.create(model=SANTI, input="And then?", previous_response_id=first.id)
assert second.previous_response_id == first.id
assert "And then?" in second.output_text, second.output_text
kinds, text = [], ""
for event in client.responses.create(model=SANTI, input="Who wrote it?", stream=True):
    kinds.append(event.type)
    if event.type == "response.output_text.delta":
        text += event.delta
assert kinds[0] == "response.created" and kinds[-1] == "response.completed", kinds
assert "Who wrote it?" in text, text
assert client.responses.retrieve(second.id).output_text == second.output_text
client.responses.delete(second.id)
try:
    client.responses.retrieve(second.id)
    raise SystemExit("a deleted response must be gone")
except openai.NotFoundError:
    pass
other_token = call("/api/auth/register/", {"username": "sdk_other", "password": "sdk-password-2"})["token"]
other_key = call("/api/user/api-keys/", {"name": "other"}, other_token)["key"]
other = OpenAI(base_url=BASE + "/v1", api_key=other_key, max_retries=0)
try:
    other.responses.create(model=SANTI, input="?", previous_response_id=first.id)
    raise SystemExit("another user's response must not be followed up")
except openai.NotFoundError as err:
    assert err.body and err.body.get("param") == "previous_response_id", err.body
print(f"openai-sdk {openai.__version__}: models, completions (plain and streamed), responses, errors: ok")
