"""benchmarks.tile_lengths: the table of tile-length choices against the fastest lengths, and its checks."""

from __future__ import annotations

import json

import pytest

import stgcn.ops.tiled_conv as tiled


def test_picked_is_the_rule_at_each_weight_cost_and_restores_it() -> None:
    from benchmarks.tile_lengths import picked

    before = tiled.WEIGHT_READ_MACS
    assert picked(256, 2, 75, 18, 0) == tiled.choose_tile_length(9, 2, 75, 256, 256) == 42
    assert picked(256, 2, 75, 18, before) == tiled.choose_tile_length(9, 2, 75, 256, 256, 18)
    assert tiled.WEIGHT_READ_MACS == before


def test_tile_lengths_writes_every_length_and_ratios_not_below_one(tmp_path) -> None:
    from benchmarks.tile_lengths import main

    out = tmp_path / "t.json"
    assert main(["--points", "ucla-b1", "--rounds", "1", "--weights", "0", "12", "--out", str(out)]) == 0
    point = json.loads(out.read_text())["points"]["ucla-b1"]
    assert len(point["layers"]) == 5
    for layer in point["layers"]:
        assert set(layer["picked"]) == {"0", "12"}
        assert all(str(n) in layer["ms"] for n in layer["picked"].values())  # picked lengths were timed
        assert str(layer["fastest"]) in layer["ms"]
    assert all(ratio >= 1.0 for ratio in point["time_over_fastest"].values())


def test_tile_lengths_rejects_bad_options() -> None:
    from benchmarks.tile_lengths import main

    with pytest.raises(SystemExit) as exc:
        main(["--rounds", "0"])
    assert exc.value.code == 2
