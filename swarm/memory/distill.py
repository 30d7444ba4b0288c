"""Distillers turn a judged trajectory into at most three patterns.

Successes yield *strategies* ("in contexts like this, doing A worked"); failures yield
*lessons* ("in contexts like this, avoid A"). Every pattern is embedded from the trajectory's
context, so a later search from a similar context finds it.
"""

from __future__ import annotations

import json
from typing import Protocol

from .embedders import Embedder
from .errors import LLMError
from .judge import render_trajectory
from .llm import ChatClient, parse_json_object
from .models import Pattern, PatternKind, Source, Trajectory, Verdict, make_pattern_id

MAX_PATTERNS = 3


class Distiller(Protocol):
    def distill(self, trajectory: Trajectory, verdict: Verdict, embedder: Embedder,
                now: float) -> list[Pattern]: ...


def _pattern(t: Trajectory, v: Verdict, index: int, *, title: str, description: str,
             content: str, action: str, tags: tuple[str, ...], embedding, now: float) -> Pattern:
    kind: PatternKind = "strategy" if v.success else "lesson"
    return Pattern(
        id=make_pattern_id(t.agent, t.id, str(index)),
        title=title[:300], description=description[:2000], content=content[:20000],
        embedding=embedding, kind=kind, domain=t.domain, action=action,
        tags=tuple(x for x in dict.fromkeys((*tags, f"action:{action}" if action else "", v.label)) if x),
        confidence=v.confidence, created_at=now, source=Source(t.agent, t.id, v.label, float(t.reward)),
        updated_by=t.agent,
    )


class RuleDistiller:
    """The default, with no model: one pattern for the trajectory's main action, plus up to two
    for other actions whose step rewards agree with the verdict (largest first)."""

    def __init__(self, max_patterns: int = MAX_PATTERNS) -> None:
        if not 1 <= max_patterns <= MAX_PATTERNS:
            raise ValueError(f"max_patterns must be in 1..{MAX_PATTERNS}")
        self.max_patterns = max_patterns

    def distill(self, trajectory: Trajectory, verdict: Verdict, embedder: Embedder,
                now: float) -> list[Pattern]:
        t = trajectory
        if not t.steps:
            return []
        emb = embedder.embed(t.context)
        ctx = t.context_text
        sign = 1.0 if verdict.success else -1.0
        # the main action is the one whose step reward best agrees with the verdict (first on ties)
        main = max(range(len(t.steps)), key=lambda i: (sign * t.steps[i].reward, -i))
        chosen = [t.steps[main].action]
        agreeing = sorted((i for i, s in enumerate(t.steps) if sign * s.reward > 0),
                          key=lambda i: (-sign * t.steps[i].reward, i))
        for i in agreeing:
            if len(chosen) < self.max_patterns and t.steps[i].action not in chosen:
                chosen.append(t.steps[i].action)
        out = []
        for i, action in enumerate(chosen):
            rewards = [s.reward for s in t.steps if s.action == action]
            body = (f"Task: {t.task or t.domain}. Context: {ctx}. Action: {action}. "
                    f"Step rewards {', '.join(f'{r:.4g}' for r in rewards)}; trajectory reward {t.reward:.4g}. "
                    f"Judge: {verdict.label} ({verdict.confidence:.2f}); {'; '.join(verdict.reasons)}")
            if verdict.success:
                title = f"{action} worked in {t.domain}"
                desc = f"Use {action} when the context resembles: {ctx}"
            else:
                title = f"avoid {action} in {t.domain}"
                desc = f"In a context like {ctx}, avoid {action}: it failed (reward {t.reward:.4g})"
            out.append(_pattern(t, verdict, i, title=title, description=desc, content=body,
                                action=action, tags=(t.domain,), embedding=emb, now=now))
        return out


DISTILL_SYSTEM = (
    "You distill reusable memory from one judged agent trajectory. Answer with one JSON object and "
    'nothing else: {"patterns": [{"title": str, "description": str, "content": str, '
    '"action": str, "tags": [str]}]} with at most 3 patterns. For a success, write strategies that '
    "say when to use the approach; for a failure, write lessons of the form 'in context X, avoid Y'."
)


class LLMDistiller:
    """Asks a chat model for up to three patterns and validates them."""

    def __init__(self, client: ChatClient, max_patterns: int = MAX_PATTERNS) -> None:
        if not 1 <= max_patterns <= MAX_PATTERNS:
            raise ValueError(f"max_patterns must be in 1..{MAX_PATTERNS}")
        self.client = client
        self.max_patterns = max_patterns

    def distill(self, trajectory: Trajectory, verdict: Verdict, embedder: Embedder,
                now: float) -> list[Pattern]:
        who = f"LLM distiller ({self.client.name})"
        prompt = json.dumps({"verdict": {"label": verdict.label, "confidence": verdict.confidence,
                                         "reasons": list(verdict.reasons)}}) + "\n" + render_trajectory(trajectory)
        obj = parse_json_object(self.client.complete(DISTILL_SYSTEM, prompt), who)
        items = obj.get("patterns")
        if not isinstance(items, list) or not items:
            raise LLMError(f"{who}: 'patterns' must be a non-empty list")
        emb = embedder.embed(trajectory.context)
        out = []
        for i, item in enumerate(items[: self.max_patterns]):
            if not isinstance(item, dict):
                raise LLMError(f"{who}: pattern {i} is not an object")
            fields: dict[str, str] = {}
            for k in ("title", "description", "content"):
                val = item.get(k)
                if not isinstance(val, str) or not val.strip():
                    raise LLMError(f"{who}: pattern {i} needs a non-empty string '{k}'")
                fields[k] = val
            action = item.get("action", "")
            tags = item.get("tags", [])
            if not isinstance(action, str) or not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise LLMError(f"{who}: pattern {i} has a malformed 'action' or 'tags'")
            out.append(_pattern(trajectory, verdict, i, title=fields["title"], description=fields["description"],
                                content=fields["content"], action=action, tags=tuple(tags[:16]),
                                embedding=emb, now=now))
        return out
