"""Judges and distillers, with the LLM variants against a loopback server speaking each API."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from swarm.memory import (
    AnthropicClient,
    HashingTextEmbedder,
    LLMDistiller,
    LLMError,
    LLMJudge,
    MissingAPIKeyError,
    OpenAIChatClient,
    OutcomeJudge,
    RuleDistiller,
    Step,
    Trajectory,
    Verdict,
)

KEY = "test-key-123"


class FakeLLM:
    """Loopback HTTP server for /v1/chat/completions (OpenAI) and /v1/messages (Anthropic)."""

    def __init__(self):
        self.requests = []
        self.reply = "{}"
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), body))
                if self.path == "/v1/chat/completions":
                    ok = self.headers.get("Authorization") == f"Bearer {KEY}"
                    payload = {"choices": [{"message": {"role": "assistant", "content": outer.reply}}]}
                elif self.path == "/v1/messages":
                    ok = self.headers.get("x-api-key") == KEY and self.headers.get("anthropic-version") == "2023-06-01"
                    payload = {"type": "message", "role": "assistant",
                               "content": [{"type": "text", "text": outer.reply}]}
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                status = outer.status if ok else 401
                data = json.dumps(payload if status == 200 else {"error": {"message": "denied"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm():
    server = FakeLLM()
    yield server
    server.close()


def _clients(llm):
    return {
        "openai": OpenAIChatClient("gpt-test", api_key=KEY, base_url=llm.url + "/v1"),
        "anthropic": AnthropicClient("claude-test", api_key=KEY, base_url=llm.url),
    }


TRAJ = Trajectory(id="t1", agent="a1", context="strong uptrend, low volatility", task="trade SPY",
                  domain="trading", reward=1.2,
                  steps=(Step("momentum", "price rose", 1.0), Step("breakout", "new high", 0.5),
                         Step("flat", "", -0.1)))


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_llm_judge_speaks_each_api_at_temperature_zero(llm, provider):
    llm.reply = '```json\n{"label": "success", "confidence": 0.8, "reasons": ["profit"]}\n```'
    verdict = LLMJudge(_clients(llm)[provider]).judge(TRAJ)
    assert verdict == Verdict("success", 0.8, ("profit",))
    path, headers, body = llm.requests[-1]
    assert body["temperature"] == 0
    if provider == "openai":
        assert path == "/v1/chat/completions" and body["model"] == "gpt-test"
        assert [m["role"] for m in body["messages"]] == ["system", "user"]
        assert "trade SPY" in body["messages"][1]["content"]
    else:
        assert path == "/v1/messages" and body["model"] == "claude-test"
        assert "success" in body["system"] and body["max_tokens"] > 0
        assert "trade SPY" in body["messages"][0]["content"]


@pytest.mark.parametrize("reply, needle", [
    ("I think it went well", "no JSON object"),
    ('{"label": "great", "confidence": 0.5}', "label"),
    ('{"label": "success", "confidence": 7}', "confidence"),
    ('{"label": "success", "confidence": 0.5, "reasons": "x"}', "reasons"),
])
def test_llm_judge_rejects_unusable_verdicts(llm, reply, needle):
    llm.reply = reply
    with pytest.raises(LLMError, match=needle):
        LLMJudge(_clients(llm)["openai"]).judge(TRAJ)


def test_http_errors_and_wrong_keys_are_clear(llm):
    bad = OpenAIChatClient("m", api_key="wrong", base_url=llm.url + "/v1")
    with pytest.raises(LLMError, match="HTTP 401"):
        LLMJudge(bad).judge(TRAJ)
    llm.status = 500
    with pytest.raises(LLMError, match="HTTP 500"):
        LLMJudge(_clients(llm)["anthropic"]).judge(TRAJ)
    dead = OpenAIChatClient("m", api_key=KEY, base_url="http://127.0.0.1:9/v1", timeout=2)
    with pytest.raises(LLMError, match="failed"):
        LLMJudge(dead).judge(TRAJ)


def test_missing_api_key_is_a_clear_error_at_construction(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        OpenAIChatClient()
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        AnthropicClient()
    monkeypatch.setenv("ANTHROPIC_API_KEY", "from-env")
    assert AnthropicClient()._key == "from-env"


def test_outcome_judge_confidence_rule():
    j = OutcomeJudge(threshold=0.0, scale=1.0)
    win = j.judge(TRAJ)
    assert win.label == "success" and win.confidence == pytest.approx(0.5 + 0.5 * np.tanh(1.2))
    flat = Trajectory("t2", "a", "ctx", (Step("flat"),), reward=0.0)
    assert j.judge(flat) == Verdict("failure", 0.5, j.judge(flat).reasons)


def test_rule_distiller_strategies_from_success_lessons_from_failure():
    emb = HashingTextEmbedder(64)
    d = RuleDistiller()
    wins = d.distill(TRAJ, Verdict("success", 0.9), emb, now=5.0)
    assert [p.action for p in wins] == ["momentum", "breakout"]  # flat lost money: not a strategy
    assert all(p.kind == "strategy" and p.confidence == 0.9 and p.created_at == 5.0 for p in wins)
    assert all(np.array_equal(p.embedding, emb.embed(TRAJ.context)) for p in wins)
    assert wins[0].source.trajectory == "t1" and "action:momentum" in wins[0].tags
    lost = Trajectory("t3", "a1", "choppy range", (Step("momentum", reward=-2.0), Step("breakout", reward=-0.5),
                                                    Step("meanrev", reward=-0.1), Step("flat", reward=-0.01)),
                      reward=-2.6, domain="trading")
    lessons = d.distill(lost, Verdict("failure", 0.7), emb, now=6.0)
    assert len(lessons) == 3 and all(p.kind == "lesson" for p in lessons)
    assert lessons[0].action == "momentum" and "avoid momentum" in lessons[0].description
    assert len({p.id for p in lessons}) == 3
    assert [p.id for p in d.distill(lost, Verdict("failure", 0.7), emb, now=6.0)] == [p.id for p in lessons]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_llm_distiller_caps_at_three_and_validates(llm, provider):
    items = [{"title": f"t{i}", "description": "d", "content": "c", "action": "momentum", "tags": ["x"]}
             for i in range(5)]
    llm.reply = json.dumps({"patterns": items})
    pats = LLMDistiller(_clients(llm)[provider]).distill(TRAJ, Verdict("failure", 0.6), HashingTextEmbedder(32), 1.0)
    assert [p.title for p in pats] == ["t0", "t1", "t2"]
    assert all(p.kind == "lesson" for p in pats)
    llm.reply = json.dumps({"patterns": [{"title": "", "description": "d", "content": "c"}]})
    with pytest.raises(LLMError, match="title"):
        LLMDistiller(_clients(llm)[provider]).distill(TRAJ, Verdict("success", 0.6), HashingTextEmbedder(32), 1.0)
