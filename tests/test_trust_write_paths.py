"""Every write path on a real full or read-only file system (a small tmpfs; skipped where mounting is not
permitted): checkpoint, TorchScript export, evaluation outputs, render, plot-graph and a run directory each end
in one ``error:`` line naming the real output, exit 2, and leave no temporary file behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from stgcn.cli import main
from stgcn.utils.atomic import OutputError
from tests.use_utils import random_clip, small_checkpoint, small_model


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


@pytest.fixture
def full_dir(tmp_path):
    """A 64 kB tmpfs, filled up: every write into it fails with ENOSPC."""
    d = tmp_path / "full"
    if not _mount(d, "size=64k"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        with open(d / "fill", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:
                pass
        yield d
    finally:
        _umount(d)


@pytest.fixture
def readonly_dir(tmp_path):
    d = tmp_path / "ro"
    if not _mount(d, "size=64k,ro"):
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        yield d
    finally:
        _umount(d)


def _one_line_naming(capsys, code: int, out: Path, reason: str) -> None:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 2 and len(lines) == 1 and lines[0] == err.strip().splitlines()[-1], err
    assert str(out) in lines[0] and reason in lines[0] and "Traceback" not in err, err


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.rglob("*") if p.name != "fill")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return small_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt")


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.npy"
    np.save(path, random_clip(20)[:, 0])
    return path


def test_checkpoint_on_a_full_disk(full_dir):
    from stgcn.engine.checkpoint import save_checkpoint

    out = full_dir / "m.pt"
    with pytest.raises(OutputError, match="No space left") as info:
        save_checkpoint(out, small_model())
    assert str(out) in str(info.value) and "\n" not in str(info.value)
    assert _leftovers(full_dir) == []


@pytest.mark.parametrize("where", ["full", "readonly"])
def test_export_on_a_full_or_readonly_disk(where, ckpt, request, capsys):
    d = request.getfixturevalue("full_dir" if where == "full" else "readonly_dir")
    out = d / "m.ts"
    code = main(["export", str(ckpt), "--format", "torchscript", "--out", str(out), "--frames", "16"])
    _one_line_naming(capsys, code, out, "No space left" if where == "full" else "Read-only")
    assert _leftovers(d) == []


def test_render_on_a_full_disk(clip_file, full_dir, capsys):
    pytest.importorskip("matplotlib")
    out = full_dir / "r.gif"
    code = main(["render", str(clip_file), "--out", str(out), "--layout", "openpose-18", "--fps", "5"])
    _one_line_naming(capsys, code, out, "")
    assert _leftovers(full_dir) == []


def test_plot_graph_on_a_readonly_disk(ckpt, readonly_dir, capsys):
    pytest.importorskip("matplotlib")
    out = readonly_dir / "g.png"
    code = main(["plot-graph", str(ckpt), "--out", str(out)])
    _one_line_naming(capsys, code, out, "Read-only")


def test_eval_outputs_on_a_full_disk(tmp_path, full_dir, capsys):
    from stgcn.data.synthetic import make_synthetic_store
    from stgcn.engine.checkpoint import save_checkpoint
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    make_synthetic_store(tmp_path / "store", num_classes=2, clips_per_class=3, layout="kinect-v1", seed=0)
    store = tmp_path / "store"
    model = STGCN(STGCNConfig(num_classes=2, in_channels=3, graph=GraphConfig("kinect-v1"), blocks=((4, 1),)))
    save_checkpoint(tmp_path / "m.pt", model, class_names=["a", "b"])
    out = full_dir / "ev"
    code = main(["eval", str(tmp_path / "m.pt"), str(store), "--split", "test", "--out", str(out), "--no-plot",
                 "--device", "cpu"])
    _one_line_naming(capsys, code, out, "No space left")
    assert not [p for p in _leftovers(full_dir) if p.startswith(".")]


def test_training_into_a_full_disk(tmp_path, full_dir, capsys):
    import yaml

    from tests.train_utils import tiny_config_dict

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(tiny_config_dict(tmp_path / "store", train={"epochs": 1})))
    out = full_dir / "run"
    code = main(["train", str(cfg), "--out", str(out)])
    _one_line_naming(capsys, code, out, "No space left")
    assert not [p for p in _leftovers(full_dir) if p.startswith(".")]
