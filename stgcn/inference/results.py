"""What a prediction returns: the top-k classes of one input, and of one window of a sequence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Prediction", "WindowPrediction"]


@dataclass(eq=False)
class Prediction:
    """The top-k classes of one input.

    Attributes:
        indices: Class indices, best first.
        labels: Their names (``class_<i>`` when the checkpoint has no class names).
        scores: Their softmax probabilities.
        probabilities: Softmax over all classes, shape (num_classes,).
    """

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]
    probabilities: np.ndarray = field(repr=False)

    @property
    def label(self) -> str:
        """The top-1 class name."""
        return self.labels[0]

    @property
    def score(self) -> float:
        """The top-1 probability."""
        return self.scores[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable top-k: ``{"topk": [{"index", "label", "score"}, ...]}``."""
        return {"topk": [{"index": i, "label": n, "score": s}
                         for i, n, s in zip(self.indices, self.labels, self.scores, strict=True)]}


@dataclass(eq=False)
class WindowPrediction:
    """The prediction for frames ``start`` (inclusive) to ``end`` (exclusive) of a sequence."""

    start: int
    end: int
    prediction: Prediction

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, **self.prediction.to_dict()}
