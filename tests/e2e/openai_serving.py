"""Serving every request the network can serve, checked with the official
OpenAI Python client against a running proofmesh network (default
configuration, 2 providers). Reads OPENAI_BASE_URL and OPENAI_API_KEY.

1. At idle, the README's example and a ~400-token prompt with a system
   message both succeed (they got false 503s before placement counted
   tokens and RTT from measurements).
2. 100 concurrent requests, with the client's retries turned off, all
   succeed: they are queued, not refused.
3. Right after the burst, a single request is served again within seconds.

Prints one JSON line with what it measured; exits non-zero on any failed
expectation."""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openai

MODEL = "SmolLM2-135M-Instruct"
# No retries: a refused request must show up as a failure, not be hidden by
# the client's own backoff.
client = openai.OpenAI(
    base_url=os.environ["OPENAI_BASE_URL"],
    api_key=os.environ["OPENAI_API_KEY"],
    max_retries=0,
    timeout=240,
)


def ask(messages, max_tokens):
    t = time.monotonic()
    r = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
    return r, time.monotonic() - t


# 1. At idle.
readme, _ = ask([{"role": "user", "content": "What is the capital of France?"}], 32)
assert "Paris" in readme.choices[0].message.content, readme.choices[0].message.content

paragraph = (
    "Decentralized GPU markets rent accelerators from many independent owners. "
    "Clients cannot see the machines, so every answer carries a signed receipt, "
    "a logit fingerprint and an entry in a public transparency log. "
)
long_prompt = paragraph * 8 + "Summarize the text above in one sentence."
long, _ = ask(
    [
        {"role": "system", "content": "You are a careful assistant. Answer briefly and precisely."},
        {"role": "user", "content": long_prompt},
    ],
    16,
)
assert long.usage.prompt_tokens >= 300, long.usage
assert long.choices[0].message.content, "empty answer to the long prompt"

# 2. A burst of 100 concurrent requests.
def one(i):
    try:
        r, took = ask([{"role": "user", "content": f"Count to three. ({i})"}], 8)
        return {"ok": True, "s": took, "missed": r.model_extra["proofmesh"].get("timing", {}).get("objective_missed", False)}
    except openai.APIStatusError as e:
        return {"ok": False, "status": e.status_code, "body": e.body}
    except openai.APIError as e:  # connection errors, timeouts
        return {"ok": False, "status": None, "body": str(e)}


t0 = time.monotonic()
with ThreadPoolExecutor(max_workers=100) as pool:
    burst = list(pool.map(one, range(100)))
burst_s = time.monotonic() - t0
failed = [b for b in burst if not b["ok"]]
assert not failed, f"{len(failed)} of 100 failed, e.g. {failed[:3]}"

# 3. Right after the burst: a single request, served within seconds.
after, after_s = ask([{"role": "user", "content": "Hi"}], 8)
assert after_s < 10.0, f"a single request after the burst took {after_s:.2f} s"

print(
    json.dumps(
        {
            "readme_answer": readme.choices[0].message.content,
            "long_prompt_tokens": long.usage.prompt_tokens,
            "burst_ok": len(burst) - len(failed),
            "burst_s": round(burst_s, 2),
            "burst_best_effort": sum(1 for b in burst if b.get("missed")),
            "after_burst_s": round(after_s, 3),
            "receipts": [
                readme.model_extra["proofmesh"]["receipt_id"],
                long.model_extra["proofmesh"]["receipt_id"],
                after.model_extra["proofmesh"]["receipt_id"],
            ],
        }
    )
)
