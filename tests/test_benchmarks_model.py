"""benchmarks.model: the bfloat16 training implementation, --memory-only, and one peak-RSS child process."""

from __future__ import annotations

import json

import pytest
import torch

import benchmarks.model as bm


def test_training_impls_and_their_autocast() -> None:
    model = bm.build_model("ntu", seed=0, calibrate_frames=8)
    for impl in bm.TRAINING_IMPLS:
        module = bm.training_impl(impl, model)
        assert module.training and module is not model
    assert bm.training_impl("stgcn-bf16", model).memory_mode == "recompute"
    assert bm.training_autocast("stgcn-bf16") is torch.bfloat16
    assert [bm.training_autocast(i) for i in ("baseline", "stgcn", "stgcn-checkpoint")] == [None] * 3
    with pytest.raises(ValueError, match="valid: baseline, stgcn, stgcn-checkpoint, stgcn-bf16"):
        bm.training_impl("stgcn-fp8", model)


def test_memory_only_measures_every_impl_and_times_nothing(tmp_path, monkeypatch, capsys) -> None:
    specs: list[dict] = []

    def in_process(spec: dict) -> dict:  # the child's work without a fresh interpreter
        specs.append(spec)
        return bm._child(spec)

    monkeypatch.setattr(bm, "measure_memory", in_process)
    out = tmp_path / "m.json"
    assert bm.main(["--configs", "ntu", "--batch-sizes", "2", "--train-batch", "2", "--frames", "12",
                    "--threads", "1", "--memory-only", "--train-bf16", "--omp-wait-policy", "inherit",
                    "--out", str(out)]) == 0
    result = json.loads(out.read_text())["configs"]["ntu"]
    assert result["inference"] == {} and "training" not in result  # no timings
    memory = result["peak_memory"]
    assert set(memory["inference_batch_2"]) == {"baseline", "stgcn", "stgcn-fused"}
    assert set(memory["training_batch_2"]) == {"baseline", "stgcn", "stgcn-checkpoint", "stgcn-bf16"}
    assert all(e["peak_rss_mb"] > 0 and e["rss_before_mb"] > 0 for g in memory.values() for e in g.values())
    assert all(e["ratio_vs_baseline"] > 0 for g in memory.values() for k, e in g.items() if k != "baseline")
    assert [s["impl"] for s in specs if s["mode"] == "train"][-1] == "stgcn-bf16"
    assert "stgcn-bf16" in capsys.readouterr().out


def test_memory_only_with_no_memory_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        bm.main(["--memory-only", "--no-memory", "--omp-wait-policy", "inherit"])
    assert exc.value.code == 2
    assert "--memory-only and --no-memory" in capsys.readouterr().err


@pytest.mark.slow
def test_memory_child_runs_in_a_fresh_process() -> None:
    entry = bm.measure_memory({"config": "ntu", "frames": 12, "seed": 0, "threads": 1, "chunk_size": None,
                               "mode": "train", "impl": "stgcn-bf16", "batch": 2})
    assert entry["peak_increase_mb"] >= 0 and entry["peak_rss_mb"] > 100  # torch alone is more than this
