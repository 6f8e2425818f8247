"""The decision layer of live recognition: smoothing over windows, a confidence threshold with ``unknown``, and
per-class triggers ("alert when ``falling`` >= 0.8 for 1 s").

A :class:`Decider` (one per tracked person) takes each window's class probabilities and returns the label to
show: the mean of the last ``k`` windows' probabilities (``mean``) or the most frequent top-1 class of the last
``k`` windows (``majority``, scored by its mean probability); a score under ``threshold`` gives
:data:`UNKNOWN`. :class:`Trigger` conditions are checked on the smoothed probabilities at every window; a
trigger fires once when its condition has held for its duration, and re-arms when the condition fails.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

import numpy as np

from stgcn.errors import ConfigError
from stgcn.utils.checks import check_int, check_number

__all__ = ["UNKNOWN", "SMOOTHING_MODES", "Trigger", "parse_trigger", "Decision", "Decider"]

UNKNOWN = "unknown"
SMOOTHING_MODES = ("mean", "majority")

_TRIGGER = re.compile(r"^\s*(?P<label>.+?)\s*>=\s*(?P<score>[0-9.]+)\s*(?::|\s+for\s+)?\s*"
                      r"(?P<duration>[0-9.]+)?\s*(?P<unit>s|ms)?\s*$")


@dataclass(frozen=True)
class Trigger:
    """Fire when ``label``'s (smoothed) probability stays ``>= score`` for ``duration`` seconds.

    Attributes:
        label: Class name.
        score: Probability threshold in [0, 1].
        duration: Seconds the condition must hold (0: the first window that meets it).
    """

    label: str
    score: float
    duration: float = 0.0

    def __str__(self) -> str:
        return f"{self.label}>={self.score:g}:{self.duration:g}s"


def parse_trigger(text: str, class_names: list[str] | None = None) -> Trigger:
    """A :class:`Trigger` from ``"LABEL>=SCORE:DURATIONs"`` (also ``"LABEL >= SCORE for DURATION s"``; ``ms``
    allowed; no duration means 0).

    Raises:
        ConfigError: malformed text, a score outside [0, 1], or a label not among ``class_names``.
    """
    m = _TRIGGER.match(text)
    if m is None:
        raise ConfigError(f"bad trigger {text!r}; the form is LABEL>=SCORE:DURATION, e.g. 'falling>=0.8:1s'")
    label = m["label"].strip().strip("'\"")
    try:
        score = float(m["score"])
        duration = float(m["duration"] or 0) / (1000 if m["unit"] == "ms" else 1)
    except ValueError:
        raise ConfigError(f"bad trigger {text!r}; the form is LABEL>=SCORE:DURATION, e.g. 'falling>=0.8:1s'") from None
    check_number(score, f"trigger {text!r} score", minimum=0, maximum=1)
    if class_names is not None and label not in class_names:
        close = [c for c in class_names if label.lower() in c.lower()][:5]
        hint = f"; similar class names: {', '.join(close)}" if close else ""
        raise ConfigError(f"trigger {text!r}: the model has no class {label!r}{hint}")
    return Trigger(label, score, duration)


@dataclass(frozen=True)
class Decision:
    """The label shown after one window: ``label`` (or :data:`UNKNOWN`) with its smoothed ``score``, the
    smoothed top-k, and the triggers that fired at this window."""

    label: str
    score: float
    topk: list[tuple[str, float]]
    fired: list[Trigger]


class Decider:
    """Smoothing, threshold and triggers for one person's window predictions (see the module docstring).

    Args:
        class_names: The model's classes.
        smooth: Windows ``k`` to smooth over (1: none).
        mode: ``mean`` or ``majority``.
        threshold: Smallest smoothed score that gives a label; below it the label is :data:`UNKNOWN`.
        triggers: Conditions to fire events on.
        topk: Classes kept in :attr:`Decision.topk`.
    """

    def __init__(self, class_names: list[str], *, smooth: int = 1, mode: str = "mean", threshold: float = 0.0,
                 triggers: tuple[Trigger, ...] = (), topk: int = 5) -> None:
        if mode not in SMOOTHING_MODES:
            raise ConfigError(f"unknown smoothing mode {mode!r}; valid modes are {', '.join(SMOOTHING_MODES)}")
        self.class_names = list(class_names)
        self.mode = mode
        self.threshold = check_number(threshold, "threshold", minimum=0, maximum=1)
        self.topk = check_int(topk, "topk")
        self.triggers = tuple(triggers)
        self._history: deque[np.ndarray] = deque(maxlen=check_int(smooth, "smooth"))
        self._since: dict[Trigger, float | None] = dict.fromkeys(self.triggers)
        self._fired: set[Trigger] = set()

    def update(self, probabilities: np.ndarray, time: float) -> Decision:
        """Add one window's probabilities (at source time ``time``, seconds) and decide.

        Shape:
            probabilities: (num_classes,).
        """
        p = np.asarray(probabilities, dtype=np.float64)
        self._history.append(p)
        mean = np.mean(self._history, axis=0)
        if self.mode == "majority":
            votes = np.bincount([int(np.argmax(h)) for h in self._history], minlength=len(p))
            best = int(np.argmax(votes))  # ties: the lowest class index among the most frequent
        else:
            best = int(np.argmax(mean))
        score = float(mean[best])
        label = self.class_names[best] if score >= self.threshold else UNKNOWN
        order = np.argsort(-mean, kind="stable")[:self.topk]
        topk = [(self.class_names[i], float(mean[i])) for i in order]
        return Decision(label, score, topk, self._check_triggers(mean, time))

    def _check_triggers(self, mean: np.ndarray, time: float) -> list[Trigger]:
        fired = []
        for trig in self.triggers:
            idx = self.class_names.index(trig.label)
            if mean[idx] < trig.score:
                self._since[trig] = None
                self._fired.discard(trig)
                continue
            since = self._since[trig]
            if since is None:
                since = self._since[trig] = time
            if trig not in self._fired and time - since >= trig.duration - 1e-9:
                self._fired.add(trig)
                fired.append(trig)
        return fired
