"""Distributed training: two CPU processes on the gloo backend, set up exactly as torchrun sets them up."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from stgcn.data.synthetic import make_synthetic_store
from tests.train_utils import tiny_config

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, store: str, out: str, results: str) -> None:
    # what torchrun exports for each process
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_WORLD_SIZE=str(WORLD),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from stgcn.engine.train import train

    cfg = tiny_config(Path(store), model={"dropout": 0.2}, data={"augment": {"rotate_3d": 10.0}},
                      train={"epochs": 2, "batch_size": 4})
    result = train(cfg, Path(out))
    torch.save({"state": result.model.state_dict(), "metrics": result.metrics, "epochs": result.epochs_done},
               Path(results) / f"rank{rank}.pt")


def test_two_process_ddp_ranks_end_identical(tmp_path):
    store = tmp_path / "store"
    make_synthetic_store(store, num_classes=4, clips_per_class=6, seed=0)
    out, results = tmp_path / "run", tmp_path / "results"
    results.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(store), str(out), str(results)), nprocs=WORLD, join=True)
    r0 = torch.load(results / "rank0.pt", weights_only=True)
    r1 = torch.load(results / "rank1.pt", weights_only=True)
    assert r0["epochs"] == r1["epochs"] == 2
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:  # parameters (DDP) and BatchNorm statistics (averaged after each epoch)
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["metrics"] == r1["metrics"]  # evaluation gathered over both shards
    assert r0["metrics"]["num_samples"] == 8
    # only rank 0 wrote the run directory, once
    final = torch.load(out / "final.pt", weights_only=True)
    for k, v in r0["state"].items():
        assert torch.equal(final["state_dict"][k], v)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    log = (out / "train.log").read_text()
    assert "2 processes" in log and log.count("epoch 2/2") == 1
    # the parameters moved: the ranks agree because they trained together, not because nothing happened
    init = tiny_config(store).model.resolve(4, 3, "kinect-v1")
    from stgcn.models.stgcn import STGCN

    torch.manual_seed(0)
    fresh = STGCN(init).state_dict()
    assert not torch.equal(fresh["fc.weight"], r0["state"]["fc.weight"])


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_world_size_without_rank_is_a_clear_error(monkeypatch, tmp_path):
    from stgcn.engine.train import train
    from stgcn.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="launch distributed training with torchrun"):
        train(tiny_config(tmp_path / "s"), tmp_path / "run")
