"""stgcn.utils.checks: the state-dict comparison shared by the fine-tuning loader and the original-checkpoint
importer (their own error messages are tested in test_finetune.py and test_convert.py)."""

from __future__ import annotations

import torch

from stgcn.utils.checks import state_dict_mismatch


def test_state_dict_mismatch_names_missing_unexpected_and_the_first_shape():
    expected = {"a": torch.zeros(2, 3), "b": torch.zeros(4), "c": torch.zeros(1)}
    assert state_dict_mismatch(dict(expected), expected) == ([], [], None)
    given = {"z": torch.zeros(1), "b": torch.zeros(5), "a": torch.zeros(3, 2)}
    missing, extra, shape = state_dict_mismatch(given, expected)
    assert (missing, extra) == (["c"], ["z"])
    assert shape == ("b", (5,), (4,))  # the first differing key in the given order
