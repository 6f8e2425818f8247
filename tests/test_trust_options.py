"""Options and inputs that used to be replaced silently or end in a MemoryError: each is now one ``error:`` line
naming the option, the value or the file, exit status 2; valid extremes still work. Also: one JSON shape for
``predict --json`` and escaped class names in the text output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stgcn.cli import main
from tests.use_utils import random_clip, small_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return small_checkpoint(tmp_path_factory.mktemp("ck") / "m.pt")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.npy"
    np.save(path, random_clip(20)[:, 0])  # (T, V, C)
    return path


def _error(capsys, argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (code, err)
    assert all(n in lines[0] for n in needles), lines[0]
    return lines[0]


@pytest.mark.parametrize(("option", "value", "needle"), [
    ("--topk", "0", "topk must be an integer >= 1"),
    ("--min-frames", "1000000000000", "min_frames must be an integer >= 1 and <= 1000000"),
    ("--window", "1000000000000", "window must be an integer >= 1 and <= 1000000"),
])
def test_predict_options(ckpt, clip, capsys, option, value, needle):
    _error(capsys, ["predict", str(ckpt), str(clip), option, value], needle)


def test_predict_topk_above_the_classes_lists_them_all(ckpt, clip, capsys):
    assert main(["predict", str(ckpt), str(clip), "--topk", "100", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert len(item["topk"]) == 4


def test_empty_batch_and_all_zero_clip_are_refused(ckpt, tmp_path, capsys):
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 3, 20, 18, 1), np.float32))
    _error(capsys, ["predict", str(ckpt), str(empty)], str(empty), "no clip")
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((20, 18, 3), np.float32))
    _error(capsys, ["predict", str(ckpt), str(zeros)], str(zeros), "every keypoint is zero")


def test_short_error_is_honoured_with_a_fixed_input_length(tmp_path, capsys):
    ck = small_checkpoint(tmp_path / "fixed.pt", preprocess={"length": 12, "resize": "loop"})
    short = tmp_path / "short.npy"
    np.save(short, random_clip(3)[:, 0])
    _error(capsys, ["predict", str(ck), str(short), "--short", "error"], "3 frames is shorter")
    assert main(["predict", str(ck), str(short)]) == 0  # the default loops it, through the stored preprocessing


def test_predict_json_is_always_a_list(ckpt, clip, capsys):
    assert main(["predict", str(ckpt), str(clip), "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main(["predict", str(ckpt), str(clip), str(clip), "--json"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert isinstance(one, list) and len(one) == 1 and isinstance(two, list) and len(two) == 2
    assert one[0].keys() == two[0].keys() and one[0]["topk"] == two[1]["topk"]


def test_class_names_are_escaped_in_the_text_output(tmp_path, clip, capsys):
    from stgcn.engine.checkpoint import save_checkpoint
    from tests.use_utils import small_model

    names = ["a\nerror: forged", "\x1b[31mred", "c", "d"]
    save_checkpoint(tmp_path / "n.pt", small_model(), class_names=names)
    assert main(["predict", str(tmp_path / "n.pt"), str(clip), "--topk", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "\x1b" not in out and "a\\nerror: forged" in out and "\\x1b[31mred" in out


@pytest.mark.parametrize(("argv", "needle"), [
    (["--frames", "100000000"], "frames must be an integer >= 1 and <= 1000000"),
    (["--frames", "0"], "frames must be an integer >= 1"),
    (["--atol", "inf"], "atol must be a positive finite number"),
])
def test_export_options(ckpt, tmp_path, capsys, argv, needle):
    _error(capsys, ["export", str(ckpt), "--format", "torchscript", "--out", str(tmp_path / "m.ts"), *argv], needle)
    assert not (tmp_path / "m.ts").exists()


@pytest.mark.parametrize("fps", ["0", "nan", "-1", "inf"])
def test_render_fps(clip, tmp_path, capsys, fps):
    _error(capsys, ["render", str(clip), "--out", str(tmp_path / "r.gif"), "--layout", "openpose-18", "--fps", fps],
           "--fps must be a finite number")


@pytest.fixture
def eval_pair(tmp_path) -> tuple[Path, Path]:
    from stgcn.data.synthetic import make_synthetic_store
    from stgcn.engine.checkpoint import save_checkpoint
    from stgcn.models.config import GraphConfig, STGCNConfig
    from stgcn.models.stgcn import STGCN

    make_synthetic_store(tmp_path / "s", num_classes=2, clips_per_class=3, layout="kinect-v1", seed=0)
    save_checkpoint(tmp_path / "m.pt", STGCN(STGCNConfig(num_classes=2, in_channels=3, graph=GraphConfig("kinect-v1"),
                                                         blocks=((4, 1),))), class_names=["a", "b"])
    return tmp_path / "m.pt", tmp_path / "s"


def test_eval_clips_are_bounded(eval_pair, tmp_path, capsys):
    ck, store = eval_pair
    _error(capsys, ["eval", str(ck), str(store), "--clips", "100000", "--no-plot", "--out", str(tmp_path / "ev")],
           "clips must be an integer >= 1 and <= 10000")


def test_eval_of_a_store_with_nan_frames_is_an_error_not_chance(eval_pair, tmp_path, capsys):
    ck, store = eval_pair
    dtype = json.loads((store / "manifest.json").read_text())["dtype"]
    frames = np.memmap(store / "frames.bin", dtype=dtype, mode="r+")
    frames[:] = np.nan
    frames.flush()
    del frames
    _error(capsys, ["eval", str(ck), str(store), "--no-plot", "--out", str(tmp_path / "ev")], str(store),
           "scores are NaN or infinite for 2 of 2 clips")
    assert not (tmp_path / "ev").exists()


def test_ntu_max_bodies_is_bounded(tmp_path, capsys):
    from tests.source_writers import ntu_text

    src = tmp_path / "ntu"
    src.mkdir()
    rng = np.random.default_rng(0)
    (src / "S001C001P001R001A001.skeleton").write_text(
        ntu_text([[("72057594037944738", rng.normal(size=(25, 3)))] for _ in range(3)]))
    _error(capsys, ["prepare", "ntu", str(src), str(tmp_path / "out"), "--max-bodies", "100000000", "--no-progress",
                    "--workers", "1"], "max_bodies must be an integer >= 1 and <= 1024")


@pytest.mark.parametrize("fmt", ["keypoints", "pyskl"])
def test_a_huge_integer_label_does_not_build_a_billion_class_names(tmp_path, capsys, fmt):
    from stgcn.data.readers.keypoints import save_keypoints
    from tests.source_writers import pyskl_annotation, write_pyskl

    if fmt == "keypoints":
        src = tmp_path / "src"
        for i, label in enumerate([0, 10**9]):
            save_keypoints(src / "train" / f"c{i}.json", np.random.default_rng(i).random((4, 1, 17, 2)),
                           layout="coco-17", label=label, split="train")
    else:
        src = tmp_path / "a.pkl"
        write_pyskl(src, [pyskl_annotation("c0", 0, 1, 4), pyskl_annotation("c1", 10**9, 1, 4)],
                    {"train": ["c0", "c1"]})
    _error(capsys, ["prepare", fmt, str(src), str(tmp_path / "out"), "--no-progress", "--workers", "1"],
           "the number of classes (largest integer label + 1) must be <= 100000")


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_fuse_damaged_scores_are_one_line(tmp_path, capsys, damage):
    from stgcn.engine.evaluate import Scores, save_scores

    good = tmp_path / "good.npz"
    save_scores(good, Scores(np.eye(3, dtype=np.float32), np.arange(3), ["a", "b", "c"], ["x", "y", "z"], 1, "test"))
    data = bytearray(good.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        for k in range(len(data) // 2, len(data) // 2 + 64):
            data[k] ^= 0xA5
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    _error(capsys, ["fuse", str(good), str(bad)], str(bad), "not a readable scores file")


def test_predict_layout_that_does_not_fit_the_array_is_refused(ckpt, clip, capsys):
    _error(capsys, ["predict", str(ckpt), str(clip), "--layout", "coco-17"], str(clip),
           "18 joints per person; layout 'coco-17' has 17")


@pytest.mark.parametrize("workers", ["-1", "1000000000000"])
def test_prepare_workers_are_checked(tmp_path, capsys, workers):
    from stgcn.data.readers.keypoints import save_keypoints

    for i in range(2):
        save_keypoints(tmp_path / "src" / "train" / f"c{i}.json", np.random.default_rng(i).random((4, 1, 17, 2)),
                       layout="coco-17", label="ab"[i], split="train")
    _error(capsys, ["prepare", "keypoints", str(tmp_path / "src"), str(tmp_path / "out"), "--no-progress",
                    "--workers", workers], "workers must be an integer >= 0 and <= 1024")


def test_live_skips_hostile_lines_with_a_warning_and_checks_its_options(tmp_path, capsys, caplog):
    from stgcn.inference.sources import KeypointSource

    path = tmp_path / "f.jsonl"
    person = [[1.0, 2.0, 0.9]] * 18
    path.write_bytes(b'{"people": "\xff"}\n' + b"[" * 50_000 + b"]" * 50_000 + b"\n"
                     + json.dumps({"people": [person] * 2000}).encode() + b"\n"
                     + json.dumps({"people": [person], "image_size": [640, 480]}).encode() + b"\n")
    source = KeypointSource(path)
    frames = list(source)
    assert len(frames) == 1 and source.skipped == 3
    assert "nested more than 100 levels" in caplog.text and "the number of people must be <= 1024" in caplog.text
    ck = small_checkpoint(tmp_path / "m.pt")
    for option, value in (("--fps", "0"), ("--fps", "nan"), ("--detect-every", "0"), ("--max-people", "-1")):
        _error(capsys, ["live", "--source", str(path), "--checkpoint", str(ck), option, value], option)
