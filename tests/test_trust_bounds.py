"""Bounds on sizes that come from a file or an option: one-line errors naming the limit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from stgcn.errors import DataError
from stgcn.utils.safe_pickle import loads_pickle


def test_shared_reference_blow_up_is_refused():
    x: list = [0.0] * 100
    for _ in range(6):
        x = [x] * 100  # 100**7 elements when expanded, a few kB pickled
    data = pickle.dumps({"annotations": x}, protocol=4)
    assert len(data) < 10_000
    with pytest.raises(DataError, match="shared references expand to more than") as info:
        loads_pickle(data, "hostile.pkl")
    assert str(info.value).startswith("hostile.pkl: ") and "\n" not in str(info.value)


def test_self_containing_pickle_is_refused():
    a: list = []
    a.append(a)
    with pytest.raises(DataError, match="contains itself"):
        loads_pickle(pickle.dumps(a), "loop.pkl")


def test_ordinary_pickles_still_load():
    obj = {"split": {"xsub_train": ["a", "b"]},
           "annotations": [{"keypoint": np.zeros((1, 30, 17, 2), np.float32), "label": i} for i in range(50)]}
    out = loads_pickle(pickle.dumps(obj), "ok.pkl")
    assert len(out["annotations"]) == 50 and out["annotations"][3]["keypoint"].shape == (1, 30, 17, 2)
    shared = np.zeros(5)
    assert len(loads_pickle(pickle.dumps([shared] * 1000), "s.pkl")) == 1000
