"""Chat clients for LLM judges and distillers: OpenAI-compatible chat and Anthropic Messages, over httpx.

Both ask for temperature 0 and return the model's text; :func:`parse_json_object` pulls the JSON
object out of it. A missing API key is reported when the client is built, not on first use.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Protocol

import httpx

from .errors import LLMError, MissingAPIKeyError


class ChatClient(Protocol):
    """Sends one system + user prompt and returns the model's text reply."""

    name: str

    def complete(self, system: str, user: str) -> str: ...


def _key(explicit: str | None, env: str, provider: str) -> str:
    key = explicit if explicit is not None else os.environ.get(env, "")
    if not key:
        raise MissingAPIKeyError(f"{provider}: no API key: pass api_key=... or set {env}")
    return key


def _post(http: httpx.Client, name: str, url: str, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    try:
        r = http.post(url, headers=headers, json=body)
    except httpx.HTTPError as e:
        raise LLMError(f"{name}: request to {url} failed: {e.__class__.__name__}: {e}") from None
    if r.status_code != 200:
        raise LLMError(f"{name}: {url} answered HTTP {r.status_code}: {r.text[:200]!r}")
    try:
        data = r.json()
    except ValueError:
        raise LLMError(f"{name}: {url} answered with a body that is not JSON: {r.text[:200]!r}") from None
    if not isinstance(data, dict):
        raise LLMError(f"{name}: {url} answered with JSON that is not an object")
    return data


class OpenAIChatClient:
    """Any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM, llama.cpp, Ollama...)."""

    name = "openai"

    def __init__(self, model: str = "gpt-4o-mini", *, api_key: str | None = None,
                 base_url: str = "https://api.openai.com/v1", timeout: float = 60.0,
                 json_mode: bool = True, api_key_env: str = "OPENAI_API_KEY") -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.json_mode = json_mode
        self._key = _key(api_key, api_key_env, "OpenAI-compatible chat")
        self._http = httpx.Client(timeout=timeout)

    def complete(self, system: str, user: str) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        data = _post(self._http, self.name, f"{self.base_url}/chat/completions",
                     {"Authorization": f"Bearer {self._key}"}, body)
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"{self.name}: reply has no choices[0].message.content") from None

    def close(self) -> None:
        self._http.close()


class AnthropicClient:
    """The Anthropic Messages API (``POST /v1/messages``)."""

    name = "anthropic"
    API_VERSION = "2023-06-01"

    def __init__(self, model: str = "claude-3-5-haiku-latest", *, api_key: str | None = None,
                 base_url: str = "https://api.anthropic.com", timeout: float = 60.0,
                 max_tokens: int = 1024, api_key_env: str = "ANTHROPIC_API_KEY") -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.max_tokens = max_tokens
        self._key = _key(api_key, api_key_env, "Anthropic Messages")
        self._http = httpx.Client(timeout=timeout)

    def complete(self, system: str, user: str) -> str:
        body = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "system": system,
            "messages": [{"role": "user", "content": user}],
        }
        headers = {"x-api-key": self._key, "anthropic-version": self.API_VERSION}
        data = _post(self._http, self.name, f"{self.base_url}/v1/messages", headers, body)
        blocks = data.get("content")
        if not isinstance(blocks, list):
            raise LLMError(f"{self.name}: reply has no content blocks")
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        if not text:
            raise LLMError(f"{self.name}: reply has no text block")
        return text

    def close(self) -> None:
        self._http.close()


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_json_object(text: str, who: str) -> dict[str, Any]:
    """The JSON object in a model's reply, tolerating code fences and prose around it."""
    stripped = _FENCE.sub("", text.strip())
    start, end = stripped.find("{"), stripped.rfind("}")
    if start < 0 or end <= start:
        raise LLMError(f"{who}: reply holds no JSON object: {text[:120]!r}")
    try:
        obj = json.loads(stripped[start:end + 1])
    except json.JSONDecodeError as e:
        raise LLMError(f"{who}: reply is not valid JSON ({e.msg}): {text[:120]!r}") from None
    if not isinstance(obj, dict):
        raise LLMError(f"{who}: reply JSON is not an object")
    return obj
