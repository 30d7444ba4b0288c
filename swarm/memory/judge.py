"""Judges label a trajectory a success or a failure, with a confidence and reasons."""

from __future__ import annotations

import json
import math
from typing import Protocol

from .errors import LLMError
from .llm import ChatClient, parse_json_object
from .models import Trajectory, Verdict, VerdictLabel


class Judge(Protocol):
    def judge(self, trajectory: Trajectory) -> Verdict: ...


class OutcomeJudge:
    """Labels by reward: success when ``reward > threshold``.

    Confidence grows with the distance from the threshold:
    ``0.5 + 0.5 * tanh(|reward - threshold| / scale)`` — a reward right at the threshold is a
    coin flip (0.5), one several ``scale`` away is near-certain.
    """

    def __init__(self, threshold: float = 0.0, scale: float = 1.0) -> None:
        if scale <= 0:
            raise ValueError("scale must be > 0")
        self.threshold = threshold
        self.scale = scale

    def judge(self, trajectory: Trajectory) -> Verdict:
        r = trajectory.reward
        if not math.isfinite(r):
            raise ValueError(f"trajectory {trajectory.id!r}: reward is not finite")
        margin = abs(r - self.threshold)
        label: VerdictLabel = "success" if r > self.threshold else "failure"
        conf = 0.5 + 0.5 * math.tanh(margin / self.scale)
        return Verdict(label, conf, (f"reward {r:.4g} {'>' if label == 'success' else '<='} "
                                     f"threshold {self.threshold:.4g}",))


JUDGE_SYSTEM = (
    "You judge whether an agent's trajectory achieved its task. Answer with one JSON object and "
    'nothing else: {"label": "success" | "failure", "confidence": number in [0, 1], '
    '"reasons": [short strings]}.'
)


def render_trajectory(t: Trajectory) -> str:
    steps = [{"action": s.action, "observation": s.observation, "reward": s.reward} for s in t.steps]
    return json.dumps({"task": t.task, "domain": t.domain, "context": t.context_text,
                       "steps": steps, "final_reward": t.reward}, indent=1)


class LLMJudge:
    """Asks a chat model (temperature 0) for a JSON verdict and validates it."""

    def __init__(self, client: ChatClient) -> None:
        self.client = client

    def judge(self, trajectory: Trajectory) -> Verdict:
        who = f"LLM judge ({self.client.name})"
        obj = parse_json_object(self.client.complete(JUDGE_SYSTEM, render_trajectory(trajectory)), who)
        label = obj.get("label")
        if label not in ("success", "failure"):
            raise LLMError(f"{who}: label must be 'success' or 'failure', got {label!r}")
        conf = obj.get("confidence")
        if isinstance(conf, bool) or not isinstance(conf, (int, float)) or not (0 <= conf <= 1):
            raise LLMError(f"{who}: confidence must be a number in [0, 1], got {conf!r}")
        reasons = obj.get("reasons", [])
        if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
            raise LLMError(f"{who}: reasons must be a list of strings")
        return Verdict(label, float(conf), tuple(reasons))
