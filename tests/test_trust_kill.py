"""Durability under ``kill -9``: ``stgcn train`` killed at (seeded) random points and resumed ends with the same
weights and the same metrics as an uninterrupted run, with no torn line and no temporary file left behind.
Slow (several training subprocesses): ``pytest -m slow tests/test_trust_kill.py``."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from tests.train_utils import tiny_config_dict

ROOT = Path(__file__).resolve().parents[1]
TIMING_KEYS = {"train_clips_per_s", "train_time_s", "eval_time_s"}  # wall-clock: differ between runs


def _train(cfg: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "stgcn", "train", str(cfg), "--out", str(out), "--quiet", *extra],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_killed_and_resumed_training_equals_an_uninterrupted_run(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict(tmp_path / "store", train={"epochs": 4})))
    ref = _train(cfg, tmp_path / "ref")
    assert ref.wait(timeout=600) == 0, ref.stderr.read().decode()[-2000:]

    run, rng, kills = tmp_path / "run", random.Random(13), 0
    for _ in range(3):
        resume = ["--resume"] if (run / "last.pt").exists() else []
        proc = _train(cfg, run, *resume)
        time.sleep(rng.uniform(1.0, 8.0))  # start-up, store opening, mid-epoch or mid-write
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=60)
    resume = ["--resume"] if (run / "last.pt").exists() else []
    last = _train(cfg, run, *resume)
    assert last.wait(timeout=600) == 0, last.stderr.read().decode()[-2000:]

    assert kills >= 1
    assert _metrics(run) == _metrics(tmp_path / "ref")
    ref_w, got_w = _weights(tmp_path / "ref" / "final.pt"), _weights(run / "final.pt")
    assert ref_w.keys() == got_w.keys()
    for k in ref_w:
        torch.testing.assert_close(got_w[k], ref_w[k], rtol=0, atol=0, msg=k)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]
