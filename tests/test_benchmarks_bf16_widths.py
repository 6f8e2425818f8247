"""benchmarks.bf16_widths end to end on a tiny width: every implementation timed, the rule's layout recorded."""

from __future__ import annotations

import json

import pytest

import benchmarks.bf16_widths as widths
import stgcn.ops.layout


@pytest.mark.parametrize("native", [True, False])
def test_runs_every_implementation_and_records_the_rules_layout(tmp_path, monkeypatch, capsys, native):
    monkeypatch.setattr(widths, "WIDTHS", {"tiny": ((8, 1), (8, 2))})
    monkeypatch.setattr(widths, "FRAMES", (12,))
    monkeypatch.setattr(stgcn.ops.layout, "native_bf16", lambda: native)
    out = tmp_path / "w.json"
    assert widths.main(["--batch", "2", "--repeats", "1", "--warmup", "0", "--min-seconds", "0",
                        "--out", str(out)]) == 0
    shape = json.loads(out.read_text())["shapes"]["tiny-t12"]
    assert shape["input"] == [2, 3, 12, 20, 1] and shape["blocks"] == [[8, 1], [8, 2]]
    assert set(shape["training"]) == {"baseline", "stgcn", "baseline-bf16", "stgcn-bf16", "stgcn-bf16[vtnc]",
                                      "stgcn-bf16[nctv]"}
    assert shape["rule_layout"] == ["nctv"]  # 24 rows x 8 channels: narrow
    assert all(v["ratio_vs_baseline"]["median"] > 0 for k, v in shape["training"].items() if k != "baseline")
    assert "tiny-t12" in capsys.readouterr().out


def test_bad_arguments_exit_2(capsys):
    assert widths.main(["--repeats", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
