"""benchmarks.gpu_session: the one-command GPU part fails before starting anything on a missing store or device,
and its CPU dry run goes through the whole code path (trainings, supervisor, eval, fusion, packing)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from benchmarks import gpu_session


def test_missing_store_is_one_error_line_before_anything_starts(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    argv = ["--out", str(tmp_path / "out"), "--runs", str(runs), "--ucla-store", str(tmp_path / "nw-ucla"),
            "--msr-store", "", "--device", "cpu", "--bench-budget", "0"]
    assert gpu_session.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ucla-joint-s1: ")
    assert str(tmp_path / "nw-ucla") in err[0] and "stgcn prepare nw-ucla" in err[0]
    assert not runs.exists()


def test_store_without_the_configs_split_is_refused(tmp_path: Path, capsys) -> None:
    import numpy as np

    from stgcn.data.store_writer import StoreWriter
    from stgcn.graph.layouts import get_layout

    with StoreWriter(tmp_path / "nw-ucla", get_layout("kinect-v1"), ["x", "y", "z"], ["a", "b"], "float32",
                     num_persons=1) as writer:
        writer.add("c0", np.zeros((8, 1, 20, 3), np.float32), 0, splits=["train"])
        writer.finish(["train"])
    argv = ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--ucla-store",
            str(tmp_path / "nw-ucla"), "--msr-store", "", "--device", "cpu", "--bench-budget", "0"]
    assert gpu_session.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown split 'test'" in err[0]


def test_cuda_without_a_gpu_is_refused(tmp_path: Path, capsys, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ucla, _ = gpu_session.make_dry_stores(tmp_path / "stores", msr=False)
    argv = ["--out", str(tmp_path / "out"), "--runs", str(tmp_path / "runs"), "--ucla-store", ucla,
            "--msr-store", "", "--device", "cuda", "--bench-budget", "0"]
    assert gpu_session.main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: --device cuda: torch {torch.__version__} sees no CUDA device"


@pytest.mark.slow
def test_dry_run_goes_through_every_phase(tmp_path: Path) -> None:
    out, runs = tmp_path / "out", tmp_path / "work" / "runs"
    argv = ["--dry-run", "--out", str(out), "--runs", str(runs), "--deadline", "240", "--bench-budget", "45",
            "--compile-min", "0", "--poll", "1"]
    assert gpu_session.main(argv) == 0
    assert (tmp_path / "work" / "gpu-dry-data" / "nw-ucla" / "manifest.json").exists()  # made its own stores
    assert sorted(p.name for p in out.iterdir()) == ["gpu.json", "runs.tgz", "session.log", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dry_run"] is True and len(summary["runs"]) == 9
    for name, run in summary["runs"].items():
        assert run["complete"] and run["epochs_done"] == 2 and run["stopped"] is None, name
        assert run["evaluated"] == "final.pt" and 0.0 <= run["eval"]["top1"] <= 1.0, name
        assert run["eval"]["num_samples"] == 20, name  # 2 of 6 clips per class (NW-UCLA), 1 of 3 (MSR)
    assert set(summary["fusions"]) == {"ucla-J+B", "ucla-4s", "ucla-joint-3seeds"}
    assert all(f["final_checkpoints"] and f["num_samples"] == 20 for f in summary["fusions"].values())
    points = json.loads((out / "gpu.json").read_text())["points"]
    assert points and points[0]["shape"] == "ucla52"
    with tarfile.open(out / "runs.tgz") as tar:
        names = tar.getnames()
    assert "runs/ucla-joint-s1/metrics.jsonl" in names and not any(n.endswith(".pt") for n in names)
