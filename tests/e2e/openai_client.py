"""End-to-end check with the official OpenAI Python client against a running
proofmesh network. Reads OPENAI_BASE_URL and OPENAI_API_KEY. Prints one JSON
line with the receipt ids it saw; exits non-zero on any failed expectation."""
import json
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key=os.environ["OPENAI_API_KEY"])
QUESTION = "What is the capital of France?"

models = [m.id for m in client.models.list().data]
assert "SmolLM2-135M-Instruct" in models, models

resp = client.chat.completions.create(
    model="SmolLM2-135M-Instruct",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=32,
)
answer = resp.choices[0].message.content
assert "Paris" in answer, f"non-streaming answer lacks Paris: {answer!r}"
assert resp.usage.completion_tokens > 0
receipt_plain = resp.model_extra["proofmesh"]["receipt_id"]

stream = client.chat.completions.create(
    model="SmolLM2-135M-Instruct",
    messages=[{"role": "user", "content": QUESTION}],
    max_tokens=32,
    stream=True,
)
parts, receipt_stream, finish = [], None, None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        parts.append(chunk.choices[0].delta.content)
    if chunk.choices and chunk.choices[0].finish_reason:
        finish = chunk.choices[0].finish_reason
    extra = (chunk.model_extra or {}).get("proofmesh")
    if extra:
        receipt_stream = extra["receipt_id"]
streamed = "".join(parts)
assert "Paris" in streamed, f"streaming answer lacks Paris: {streamed!r}"
assert streamed == answer, f"greedy stream {streamed!r} != non-stream {answer!r}"
assert finish in ("stop", "length"), finish
assert receipt_stream, "no receipt id in the final chunk"

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    sys.exit("unknown model did not raise")
except openai.NotFoundError as e:
    assert e.body["code"] == "model_not_found", e.body

bad = openai.OpenAI(base_url=os.environ["OPENAI_BASE_URL"], api_key="pm_0000000000000000_" + "0" * 64)
try:
    bad.models.list()
    sys.exit("bad key did not raise")
except openai.AuthenticationError:
    pass

print(json.dumps({"answer": answer, "receipts": [receipt_plain, receipt_stream]}))
