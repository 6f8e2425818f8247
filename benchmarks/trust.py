"""The trust count: malformed, hostile and fault cases against every ``stgcn`` command, classified.

Run from anywhere, with the tree under test first on ``PYTHONPATH`` (the script itself may come from another
checkout; its shared case generators are read from the checkout it lives in)::

    OMP_NUM_THREADS=1 PYTHONPATH=. python benchmarks/trust.py --label after
    OMP_NUM_THREADS=1 PYTHONPATH=/work/wt-before python benchmarks/trust.py --label before

For each tree it first builds real fixtures with that tree's own CLI (a tiny synthetic training run, its
checkpoint, store and ``eval`` scores, a clip, a video, keypoint lines), then generates the cases: malformed
variants of every file a command reads (missing, a directory, a FIFO, ``/dev/null``, a symlink loop, empty,
truncated, flipped bytes, non-UTF-8, deep nesting, wrong types, huge sizes, NaN/inf, wrong joint counts,
hostile pickles) and of every option (0, negative, NaN/inf, huge, wrong type, unwritable outputs), plus the
valid baseline of each command. Every case runs in its own child process (forked from a parent that has
imported the tree once, its own session, a memory cap and a timeout) and is classified:

* ``clean_error``: exit 2 and exactly one stderr line starting ``error:``, the last (log records before it
  allowed); ``clean_error_native_noise`` when lines that native libraries (FFmpeg, OpenCV, TFLite) print to
  the file descriptor themselves precede it (counted clean: not ``stgcn``'s output);
* ``usage_error``: argparse's own refusal (``usage:`` + ``stgcn ...: error:``, exit 2), counted clean;
* ``clean_success``: exit 0 where the case should succeed;
* ``silent_success``: exit 0 where the case should fail (the case's ``expect`` says why);
* ``traceback``, ``hang`` (timeout), ``other`` (any other exit status or stderr shape);
* ``absent``: the command does not exist in that tree.

Results are merged into ``benchmarks/results/trust.json`` under ``--label``, per command.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("STGCN_SHARED_DATA", "/work/shared/data"))  # read only, when present
CLEAN = ("clean_error", "clean_error_native_noise", "usage_error", "clean_success")
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING)[ :]")


@dataclass
class Case:
    """One invocation: ``stgcn <argv>``; ``expect`` is ``"ok"`` or what should make it fail."""

    command: str
    name: str
    argv: list[str]
    expect: str
    stdin: str | None = None


# --------------------------------------------------------------------------------------------- running
def _vm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def run_case(main, argv: list[str], cwd: Path, timeout: float, stdin: str | None = None,
             mem_bytes: int = 6 * 1024**3) -> dict:
    """Run ``main(argv)`` in a forked child (own session, stdout/stderr to files, memory capped)."""
    cwd.mkdir(parents=True, exist_ok=True)
    out, err = cwd / ".stdout", cwd / ".stderr"
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            os.setsid()
            os.chdir(cwd)
            fd_in = os.open(stdin or os.devnull, os.O_RDONLY)
            os.dup2(fd_in, 0)
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), 2)
            limit = _vm_bytes() + mem_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            sys.argv = ["stgcn", *argv]
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                print(e.code, file=sys.stderr)
        except BaseException:  # what the interpreter would print for an uncaught exception
            traceback.print_exc()
            code = 1
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:
            pass
        os._exit(int(code or 0) & 0xFF)
    status = None
    while time.monotonic() - start < timeout:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(st)
            break
        time.sleep(0.02)
    try:
        os.killpg(pid, signal.SIGKILL)  # the child's session: workers it left behind, or the child on timeout
    except (ProcessLookupError, PermissionError):
        pass
    if status is None:
        os.waitpid(pid, 0)
    def read(p: Path) -> str:
        return p.read_bytes().decode("utf-8", "replace") if p.exists() else ""

    return {"rc": status, "stdout": read(out), "stderr": read(err), "seconds": round(time.monotonic() - start, 2)}


def classify(result: dict, expect: str) -> str:
    """The class of one result (see the module docstring)."""
    rc, err = result["rc"], result["stderr"]
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in err:
        return "traceback"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if rc == 0:
        return "clean_success" if expect == "ok" else "silent_success"
    if rc == 2 and lines:
        errors = [ln for ln in lines if ln.startswith("error:")]
        rest = [ln for ln in lines if not ln.startswith("error:") and not LOG_LINE.match(ln)]
        if len(errors) == 1 and lines[-1] == errors[0]:
            # lines that native libraries (FFmpeg, OpenCV, TFLite/MediaPipe) write to fd 2 themselves
            return "clean_error" if not rest else "clean_error_native_noise"
        if lines[0].startswith("usage:") and re.match(r"^stgcn( \S+)*: error: ", lines[-1]):
            return "usage_error"
    return "other"


# --------------------------------------------------------------------------------------------- fixtures
CONFIG = """\
data:
  store: {store}
  synthetic: {{num_classes: 3, clips_per_class: 6, layout: openpose-18, seed: 0}}
  train_split: train
  test_split: test
  preprocess: {{length: 16, resize: uniform, center: first}}
model:
  blocks: [[8, 1], [8, 2]]
optim: {{name: sgd, lr: 0.05}}
train: {{epochs: 1, batch_size: 4, num_workers: 0, seed: 0, device: cpu}}
"""


def build_fixtures(main, work: Path, timeout: float) -> dict[str, Path]:
    """A tiny trained run, its store and eval scores, a clip, a keypoints source folder, a video, key lines."""
    fx = work / "fixtures"
    shutil.rmtree(fx, ignore_errors=True)
    fx.mkdir(parents=True)
    cfg = fx / "tiny.yaml"
    cfg.write_text(CONFIG.format(store=fx / "store"))
    r = run_case(main, ["train", str(cfg), "--out", str(fx / "run"), "--quiet"], fx / "cwd", 600)
    ckpt = next((p for p in (fx / "run" / n for n in ("final.pt", "best.pt", "last.pt")) if p.exists()), None)
    if ckpt is None:
        raise SystemExit(f"fixture training failed: {r}")
    r = run_case(main, ["eval", str(ckpt), str(fx / "store"), "--out", str(fx / "ev"), "--no-plot",
                        "--device", "cpu"], fx / "cwd", timeout * 4)
    scores = fx / "ev" / "scores.npz"
    if not scores.exists():
        raise SystemExit(f"fixture eval failed: {r}")
    rng = np.random.default_rng(0)
    clip = fx / "clip.npy"
    np.save(clip, rng.random((40, 18, 3)).astype(np.float32))
    src = fx / "kp"
    for split in ("train", "test"):
        (src / split).mkdir(parents=True)
        for i in range(4):
            obj = {"keypoints": (rng.random((20, 1, 18, 2)) * 100).round(2).tolist(),
                   "scores": rng.random((20, 1, 18)).round(2).tolist(), "layout": "openpose-18",
                   "label": "ab"[i % 2], "split": split}
            (src / split / f"{split}{i}.json").write_text(json.dumps(obj))
    lines = fx / "frames.jsonl"
    with lines.open("w") as f:
        for t in range(40):
            people = [[[float(x), float(y), 0.9] for x, y in rng.random((18, 2)) * 400]]
            f.write(json.dumps({"frame": t, "time": t / 30, "image_size": [640, 480], "people": people}) + "\n")
    video = fx / "v.mp4"
    try:
        import cv2

        w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
        for _ in range(12):
            w.write((rng.random((64, 64, 3)) * 255).astype(np.uint8))
        w.release()
    except ImportError:
        video.write_bytes(b"")
    kin, demo = SHARED / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt", SHARED / "kinetics_demo"
    kin_ckpt = ckpt
    if kin.exists() and (demo / "clean_and_jerk.mp4").exists():  # a model and a video with a person in it
        r = run_case(main, ["convert", "original", str(kin), "--out", str(fx / "kinetics.pt"), "--class-names",
                            str(demo / "kinetics400_label_name.txt")], fx / "cwd", timeout * 4)
        if (fx / "kinetics.pt").exists():
            kin_ckpt = fx / "kinetics.pt"
            shutil.copy(demo / "clean_and_jerk.mp4", video)
    return {"cfg": cfg, "ckpt": ckpt, "store": fx / "store", "scores": scores, "clip": clip, "src": src,
            "lines": lines, "video": video, "run": fx / "run", "video_ckpt": kin_ckpt}


def shared_cases(work: Path, ckpt: Path, manifest: Path) -> dict[str, dict[str, bytes]]:
    """The case generators of ``tests/test_trust_fuzz.py`` (imported in a helper process that runs this
    checkout's code), applied to the tree under test's own checkpoint and store manifest."""
    tmp = work / "shared"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    shutil.copy(ckpt, tmp / "base.pt")  # the test's _ckpt_raw reads base.pt when it exists
    code = """
import base64, json, sys, traceback
from pathlib import Path
import tests.test_trust_fuzz as f
tmp, manifest = Path(sys.argv[1]), json.loads(Path(sys.argv[2]).read_text())
out = {"checkpoint": {}, "layout": {}, "config": {}, "manifest": {}}
for name, make in f.CHECKPOINT_CASES.items():
    try:
        out["checkpoint"][name] = base64.b64encode(make(tmp)).decode()
    except Exception:  # a key this tree's checkpoint does not have
        pass
for name, (fname, data) in f.LAYOUT_CASES.items():
    out["layout"][fname.split(".")[-1] + ":" + name] = base64.b64encode(data).decode()
for name, data in f.CONFIG_CASES.items():
    out["config"][name] = base64.b64encode(data).decode()
for name, change in f.MANIFEST_CASES.items():
    v = change(dict(manifest))
    data = v if isinstance(v, bytes) else (v if isinstance(v, str) else json.dumps(v)).encode()
    out["manifest"][name] = base64.b64encode(data).decode()
print(json.dumps(out))
"""
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    r = subprocess.run([sys.executable, "-c", code, str(tmp), str(manifest)], env=env, cwd=HERE,
                       capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise SystemExit(f"shared case generation failed: {r.stderr[-2000:]}")
    raw = json.loads(r.stdout)
    return {k: {n: base64.b64decode(v) for n, v in d.items()} for k, d in raw.items()}


# --------------------------------------------------------------------------------------------- cases
def _flip(data: bytes, at: float, n: int = 64) -> bytes:
    b = bytearray(data)
    i = int(len(b) * at)
    for k in range(i, min(i + n, len(b))):
        b[k] ^= 0xA5
    return bytes(b)


class Files:
    """Writes case files under one folder and hands back their paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.n = 0

    def write(self, name: str, data: bytes) -> str:
        self.n += 1
        d = self.root / f"{self.n:04d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        p.write_bytes(data)
        return str(p)

    def special(self, kind: str, name: str) -> str:
        self.n += 1
        d = self.root / f"{self.n:04d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / name
        if kind == "missing":
            pass
        elif kind == "dir":
            p.mkdir()
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "dev-null":
            p.symlink_to("/dev/null")
        elif kind == "dev-zero":
            p.symlink_to("/dev/zero")
        elif kind == "symlink-loop":
            p.symlink_to(d / "other")
            (d / "other").symlink_to(p)
        return str(p)

    def variants(self, name: str, base: bytes, *, text: bool = False) -> dict[str, str]:
        """Special files and byte-level corruptions of ``base``, named."""
        out = {k: self.special(k, name) for k in ("missing", "dir", "fifo", "dev-null", "dev-zero", "symlink-loop")}
        out.update({"empty": self.write(name, b""), "garbage": self.write(name, b"\x89hello\x00\xff" * 8),
                    "truncated-10": self.write(name, base[:10]),
                    "truncated-half": self.write(name, base[: len(base) // 2]),
                    "flip-0.5": self.write(name, _flip(base, 0.5)), "flip-0.9": self.write(name, _flip(base, 0.9))})
        if text:
            out.update({"non-utf8": self.write(name, base[: len(base) // 2] + b"\xff\xfe" + base[len(base) // 2:]),
                        "nul": self.write(name, base + b"\x00"),
                        "deep": self.write(name, b"[" * 50_000 + b"]" * 50_000)})
        return out


# extreme but valid values: refusing them is not required (a clean error still counts as clean)
OK_ANYWAY = {(cmd, case) for cmd, cases in {
    "eval": ("batch-size-huge", "workers-zero"),
    "export": ("atol-huge", "out-no-parent"),
    "fuse": ("scores-object", "scores-without-clips", "scores-without-split", "weights-huge",
             "weights-zero"),
    "graph": ("dilation-zero", "max-hop-zero"),
    # a live stream skips a malformed line with a WARNING naming it and goes on (not silent)
    "live": ("lines-coords-huge", "lines-coords-nan", "lines-deep", "lines-non-utf8", "lines-not-json",
             "lines-people-10000", "lines-people-str", "lines-time-backwards", "lines-joints-5",
             "lines-image-size-zero", "detect-every-huge", "max-age-huge", "max-age-zero", "max-frames-huge",
             "max-people-huge", "max-people-zero", "smooth-huge", "threshold-zero"),
    "pose": ("max-frames-huge", "video-flip-0.5", "video-flip-0.9"),
    "predict": ("input-npy-flip-0.5", "input-npy-flip-0.9", "stride-huge", "topk-huge", "window-huge"),
    # an all-zero clip is skipped and counted ("skipped 1"), as the dataset readers do; a folder named like a clip
    # file is walked as a folder (it holds no clip)
    "prepare": ("keypoints-max-persons-huge", "keypoints-workers-zero", "keypoints-clip-all-zero",
                "keypoints-clip-dir"),
    "render": ("input-all-zero", "input-npy-flip-0.5", "input-npy-flip-0.9", "input-npy-wrong-channels",
               "out-no-parent"),
    "train": ("stop-after-huge",),
    "video": ("max-frames-huge", "max-people-huge", "max-people-zero", "no-output", "topk-huge", "video-flip-0.5",
              "video-flip-0.9"),
}.items() for case in cases}

NUMBERS = {"zero": "0", "neg": "-1", "nan": "nan", "inf": "inf", "huge": "1000000000000", "word": "abc"}


def _npy(arr: np.ndarray) -> bytes:
    import io

    b = io.BytesIO()
    np.save(b, arr, allow_pickle=True)
    return b.getvalue()


def _npy_shape_lie(arr: np.ndarray, shape: str) -> bytes:
    """An ``.npy`` whose header declares ``shape`` (same header length) over ``arr``'s data."""
    data = _npy(arr)
    old = str(arr.shape).encode()
    end = data.index(b"\n")
    header = data[:end].replace(old, shape.encode())
    header = header[: end - (len(header) - end)] if len(header) > end else header
    return header.ljust(end) + data[end:]


def generate(fx: dict[str, Path], shared: dict[str, dict[str, bytes]], root: Path) -> list[Case]:
    """Every case, in a stable order."""
    f = Files(root)
    cases: list[Case] = []
    ckpt, store, clip = str(fx["ckpt"]), str(fx["store"]), str(fx["clip"])

    def add(cmd: str, name: str, argv: list[str], expect: str = "ok", stdin: str | None = None) -> None:
        cases.append(Case(cmd, name, argv, "ok" if (cmd, name) in OK_ANYWAY else expect, stdin))

    ck_bytes = fx["ckpt"].read_bytes()
    bad_ckpts = {f"ckpt-{k}": v for k, v in f.variants("m.pt", ck_bytes).items()}
    bad_ckpts.update({f"ckpt-{k}": f.write("m.pt", v) for k, v in shared["checkpoint"].items()})
    rng = np.random.default_rng(1)
    clips = {"npy-" + k: v for k, v in f.variants("x.npy", fx["clip"].read_bytes()).items()}
    clips.update({
        "npy-empty-batch": f.write("x.npy", _npy(np.zeros((0, 3, 40, 18, 1), np.float32))),
        "npy-nan": f.write("x.npy", _npy(np.full((40, 18, 3), np.nan, np.float32))),
        "npy-inf": f.write("x.npy", _npy(np.full((40, 18, 3), np.inf, np.float32))),
        "npy-1d": f.write("x.npy", _npy(np.zeros(10, np.float32))),
        "npy-6d": f.write("x.npy", _npy(np.zeros((1, 1, 1, 1, 1, 1), np.float32))),
        "npy-wrong-joints": f.write("x.npy", _npy(rng.random((40, 7, 2)).astype(np.float32))),
        "npy-wrong-channels": f.write("x.npy", _npy(rng.random((40, 18, 9)).astype(np.float32))),
        "npy-object": f.write("x.npy", _npy(np.array([{"a": 1}], dtype=object))),
        "npy-strings": f.write("x.npy", _npy(np.array([["a"] * 18] * 40))),
        "npy-complex": f.write("x.npy", _npy(rng.random((40, 18, 3)).astype(np.complex64))),
        "npy-zero-frames": f.write("x.npy", _npy(np.zeros((0, 18, 3), np.float32))),
        "npy-huge-header": f.write("x.npy", _npy_shape_lie(np.zeros((4, 18, 3), np.float32), "(10000000000, 18, 3)")),
        "json-deep": f.write("x.json", b"[" * 50_000 + b"]" * 50_000),
        "json-non-utf8": f.write("x.json", b'{"keypoints": "\xff"}'),
        "json-nan": f.write("x.json", json.dumps({"keypoints": [[[[float("nan")] * 2] * 18]] * 20,
                                                  "layout": "openpose-18"}).encode()),
        "json-list": f.write("x.json", b"[1, 2, 3]"),
        "json-bool": f.write("x.json", json.dumps({"keypoints": [[[[True, False]] * 18]] * 20,
                                                   "layout": "openpose-18"}).encode()),
        "suffix-unknown": f.write("x.xyz", b"1 2 3"),
    })
    # ------------------------------------------------------------------ graph
    for name in ("ntu-rgb+d", "coco-17", "openpose-18"):
        add("graph", f"ok-{name}", ["graph", name])
    add("graph", "ok-json", ["graph", "coco-17", "--json"])
    add("graph", "unknown-layout", ["graph", "no-such-layout"], "unknown layout")
    for key, data in shared["layout"].items():
        ext, name = key.split(":", 1)
        add("graph", f"layout-{name}", ["graph", f.write(f"l.{ext}", data)], "malformed layout file")
    for kind in ("missing", "dir", "fifo", "dev-null", "symlink-loop"):
        add("graph", f"layout-{kind}", ["graph", f.special(kind, "l.json")], "not a readable file")
    for opt in ("--max-hop", "--dilation"):
        for k, v in NUMBERS.items():
            add("graph", f"{opt[2:]}-{k}", ["graph", "coco-17", opt, v], f"{opt} {v} out of range")
    add("graph", "plot-to-dir", ["graph", "coco-17", "--plot", f.special("dir", "p.png")], "--plot is a directory")
    add("graph", "plot-bad-suffix", ["graph", "coco-17", "--plot", str(root / "p.xyz")], "unknown picture suffix")
    add("graph", "plot-no-parent", ["graph", "coco-17", "--plot", str(root / "nope" / "deeper" / "p.png")])
    # ------------------------------------------------------------------ models
    add("models", "ok", ["models"])
    add("models", "ok-json", ["models", "--json"])
    add("models", "framework-bogus", ["models", "--framework", "bogus"], "unknown framework")
    # ------------------------------------------------------------------ convert
    orig = {"missing": f.special("missing", "o.pt"), "dir": f.special("dir", "o.pt"),
            "fifo": f.special("fifo", "o.pt"), "empty": f.write("o.pt", b""), "text": f.write("o.pt", b"hello"),
            "stgcn-checkpoint": ckpt, "truncated": f.write("o.pt", ck_bytes[: len(ck_bytes) // 2]),
            "flipped": f.write("o.pt", _flip(ck_bytes, 0.5))}
    for fmt in ("original", "mmaction2", "pyskl"):
        for k, p in orig.items():
            add("convert", f"{fmt}-{k}", ["convert", fmt, p, "--out", str(root / f"cv-{fmt}-{k}.pt")],
                "not a checkpoint of that format")
    for k, v in NUMBERS.items():
        add("convert", f"original-max-hop-{k}", ["convert", "original", orig["text"], "--max-hop", v,
                                                "--out", str(root / "cv.pt")], "bad option or file")
    add("convert", "mmaction2-unknown-name", ["convert", "mmaction2", "no-such-config", "--out", str(root / "c.pt")],
        "unknown catalogue name")
    # ------------------------------------------------------------------ prepare
    for fmt in ("nw-ucla", "msr-action3d", "utkinect", "ntu", "kinetics-json", "stgcn-npy", "pyskl", "keypoints"):
        for kind in ("missing", "dir", "fifo"):
            add("prepare", f"{fmt}-src-{kind}", ["prepare", fmt, f.special(kind, "src"), str(root / f"p-{fmt}"),
                                                 "--no-progress"], "no usable source")
        add("prepare", f"{fmt}-src-garbage", ["prepare", fmt, f.write("src", b"\xff" * 100), str(root / "pg"),
                                             "--no-progress"], "no usable source")
    src = str(fx["src"])
    add("prepare", "keypoints-ok", ["prepare", "keypoints", src, str(root / "pk-ok"), "--no-progress",
                                    "--workers", "1"])
    add("prepare", "keypoints-out-is-file", ["prepare", "keypoints", src, f.write("o", b"x"), "--no-progress"],
        "OUT is a file")
    for k, v in NUMBERS.items():
        add("prepare", f"keypoints-max-persons-{k}", ["prepare", "keypoints", src, str(root / f"pm-{k}"),
                                                      "--no-progress", "--max-persons", v], "bad --max-persons")
        add("prepare", f"keypoints-workers-{k}", ["prepare", "keypoints", src, str(root / f"pw-{k}"), "--no-progress",
                                                  "--workers", v], "bad --workers")
        add("prepare", f"ntu-max-bodies-{k}", ["prepare", "ntu", f.special("dir", "ntu"), str(root / f"pn-{k}"),
                                               "--no-progress", "--max-bodies", v], "bad --max-bodies / no files")
    base_clip = (fx["src"] / "train" / "train0.json").read_bytes()
    obj = json.loads(base_clip)
    kp_bad = {k: v for k, v in f.variants("c9.json", base_clip, text=True).items() if k not in ("missing",)}
    mutations = {"label-index-huge": {**obj, "label": 10**9}, "label-list": {**obj, "label": [1]},
                 "layout-unknown": {**obj, "layout": "no-such"}, "keypoints-str": {**obj, "keypoints": "abc"},
                 "scores-shape": {**obj, "scores": [[1.0]]}, "fps-nan": {**obj, "fps": float("nan")},
                 "split-int": {**obj, "split": 3}, "zero-frames": {**obj, "keypoints": [], "scores": []},
                 "all-zero": {**obj, "keypoints": np.zeros((20, 1, 18, 2)).tolist()},
                 "nan-coords": {**obj, "keypoints": np.full((20, 1, 18, 2), 1e400).tolist()}}
    for k, v in mutations.items():
        kp_bad[k] = f.write("c9.json", json.dumps(v).encode())
    for k, p in kp_bad.items():
        d = root / f"kps-{k}"
        shutil.copytree(fx["src"], d, dirs_exist_ok=True)
        target = d / "train" / "c9.json"
        if os.path.islink(p) or not os.path.isfile(p):
            os.rename(p, target) if not os.path.islink(p) else target.symlink_to(os.readlink(p))
        else:
            shutil.copy(p, target)
        add("prepare", f"keypoints-clip-{k}", ["prepare", "keypoints", str(d), str(root / f"pko-{k}"), "--no-progress",
                                                "--workers", "1"], "one malformed clip file")
    # ------------------------------------------------------------------ info
    add("info", "ok", ["info", store])
    add("info", "ok-json", ["info", store, "--json"])
    for kind in ("missing", "fifo", "dev-null"):
        add("info", f"store-{kind}", ["info", f.special(kind, "s")], "not a store")
    add("info", "store-empty-dir", ["info", f.special("dir", "s")], "not a store")
    add("info", "store-file", ["info", f.write("s", b"x")], "not a store")
    bad_stores = {}
    for k, data in shared["manifest"].items():
        d = root / f"store-{k}"
        shutil.copytree(store, d)
        (d / "manifest.json").write_bytes(data)
        bad_stores[k] = str(d)
        add("info", f"manifest-{k}", ["info", str(d)], "malformed manifest")
    # ------------------------------------------------------------------ train
    cfg_text = fx["cfg"].read_bytes()
    add("train", "ok", ["train", str(fx["cfg"]), "--out", str(root / "tr-ok"), "--quiet", "--stop-after", "1"])
    for k, data in shared["config"].items():
        add("train", f"config-{k}", ["train", f.write("c.yaml", data), "--out", str(root / "tr")], "malformed config")
    for k, p in f.variants("c.yaml", cfg_text, text=True).items():
        add("train", f"config-file-{k}", ["train", p, "--out", str(root / "tr")], "unreadable config")
    sets = {"batch-zero": "train.batch_size=0", "epochs-neg": "train.epochs=-1", "lr-nan": "optim.lr=float('nan')",
            "lr-str": "optim.lr='x'", "num-classes-huge": "model.num_classes=10**12", "unknown-key": "train.nope=1",
            "no-equals": "train.epochs", "not-literal": "train.epochs=__import__('os')", "device-bogus":
            "train.device='bogus'", "device-cuda": "train.device='cuda'", "workers-neg": "train.num_workers=-1",
            "length-zero": "data.preprocess.length=0", "blocks-huge": "model.blocks=[[10**9, 1]]",
            "max-hop-huge": "model.graph.max_hop=10**6", "dropout-2": "model.dropout=2.0"}
    for k, s in sets.items():
        add("train", f"set-{k}", ["train", str(fx["cfg"]), "--out", str(root / f"tr-{k}"), "--set", s],
            f"bad --set {s}")
    add("train", "store-missing", ["train", str(fx["cfg"]), "--out", str(root / "tr-sm"), "--set",
                                   f"data.store='{root / 'no-store'}'", "--set", "data.synthetic=None"], "no store")
    for k, v in NUMBERS.items():
        add("train", f"stop-after-{k}", ["train", str(fx["cfg"]), "--out", str(root / f"tr-sa-{k}"),
                                         "--stop-after", v], "bad --stop-after")
    add("train", "resume-empty", ["train", str(fx["cfg"]), "--out", f.special("dir", "run"), "--resume"],
        "nothing to resume")
    add("train", "out-is-file", ["train", str(fx["cfg"]), "--out", f.write("run", b"x")], "--out is a file")
    # ------------------------------------------------------------------ eval
    add("eval", "ok", ["eval", ckpt, store, "--out", str(root / "ev-ok"), "--no-plot", "--device", "cpu"])
    add("eval", "ok-json", ["eval", ckpt, store, "--out", str(root / "ev-ok2"), "--no-plot", "--json",
                            "--device", "cpu"])
    for k, p in bad_ckpts.items():
        add("eval", k, ["eval", p, store, "--out", str(root / "ev"), "--no-plot"], "malformed checkpoint")
    for k, d in bad_stores.items():
        add("eval", f"manifest-{k}", ["eval", ckpt, d, "--out", str(root / "ev"), "--no-plot"], "malformed manifest")
    nan_store = root / "store-nan"
    shutil.copytree(store, nan_store)
    frames = np.memmap(nan_store / "frames.bin", mode="r+",
                       dtype=json.loads((nan_store / "manifest.json").read_text()).get("dtype", "float32"))
    frames[:] = np.nan
    frames.flush()
    del frames
    add("eval", "store-nan-frames", ["eval", ckpt, str(nan_store), "--out", str(root / "ev"), "--no-plot"],
        "NaN frames evaluate to chance")
    add("eval", "split-unknown", ["eval", ckpt, store, "--split", "nope", "--no-plot"], "unknown split")
    for opt in ("--clips", "--batch-size", "--workers"):
        for k, v in NUMBERS.items():
            add("eval", f"{opt[2:]}-{k}", ["eval", ckpt, store, opt, v, "--out", str(root / "ev"), "--no-plot"],
                f"bad {opt}")
    for dev in ("bogus", "cuda", "cuda:99"):
        add("eval", f"device-{dev}", ["eval", ckpt, store, "--device", dev, "--no-plot", "--out", str(root / "ev")],
            "unusable device")
    add("eval", "out-is-file", ["eval", ckpt, store, "--out", f.write("ev", b"x"), "--no-plot"], "--out is a file")
    # ------------------------------------------------------------------ fuse
    sc = str(fx["scores"])
    sc_bytes = fx["scores"].read_bytes()
    add("fuse", "ok", ["fuse", sc, sc])
    add("fuse", "ok-json", ["fuse", sc, sc, "--json", "--weights", "1", "0.5"])
    for k, p in f.variants("scores.npz", sc_bytes).items():
        add("fuse", f"scores-{k}", ["fuse", sc, p], "malformed scores")
    with np.load(fx["scores"]) as z:
        arrays = dict(z)
    for key in list(arrays):
        add("fuse", f"scores-without-{key}", ["fuse", sc, f.write("s.npz", _npz({k: v for k, v in arrays.items()
                                                                               if k != key}))], "missing key")
        if arrays[key].dtype.kind == "f":
            nan = f.write("s.npz", _npz({**arrays, key: arrays[key] * np.nan}))
            add("fuse", f"scores-nan-{key}", ["fuse", sc, nan], "NaN scores")
        if arrays[key].ndim:
            add("fuse", f"scores-short-{key}", ["fuse", sc, f.write("s.npz", _npz({**arrays, key: arrays[key][:1]}))],
                "mismatched lengths")
    add("fuse", "scores-object", ["fuse", sc, f.write("s.npz", _npz({**arrays, "x": np.array([{}], dtype=object)}))],
        "object array (pickle)")
    for k, v in NUMBERS.items():
        add("fuse", f"weights-{k}", ["fuse", sc, sc, "--weights", v, "1"], "bad weight")
    add("fuse", "weights-count", ["fuse", sc, sc, "--weights", "1"], "one weight for two files")
    add("fuse", "out-is-file", ["fuse", sc, sc, "--out", f.write("o", b"x"), "--no-plot"], "--out is a file")
    # ------------------------------------------------------------------ predict
    add("predict", "ok", ["predict", ckpt, clip])
    add("predict", "ok-json", ["predict", ckpt, clip, "--json"])
    add("predict", "ok-json-two", ["predict", ckpt, clip, clip, "--json"])
    add("predict", "ok-window", ["predict", ckpt, clip, "--window", "auto"])
    add("predict", "ok-kp-json", ["predict", ckpt, str(fx["src"] / "train" / "train0.json")])
    for k, p in bad_ckpts.items():
        add("predict", k, ["predict", p, clip], "malformed checkpoint")
    for k, p in clips.items():
        add("predict", f"input-{k}", ["predict", ckpt, p], "malformed input")
    add("predict", "input-all-zero", ["predict", ckpt, f.write("z.npy", _npy(np.zeros((40, 18, 3), np.float32)))],
        "an all-zero clip")
    for opt in ("--topk", "--window", "--stride", "--min-frames"):
        for k, v in NUMBERS.items():
            extra = ["--window", "16"] if opt == "--stride" else []
            add("predict", f"{opt[2:]}-{k}", ["predict", ckpt, clip, opt, v, *extra], f"bad {opt}")
    short = f.write("s.npy", _npy(rng.random((2, 18, 3)).astype(np.float32)))
    add("predict", "short-error", ["predict", ckpt, short, "--short", "error"], "--short error with 2 frames")
    for dev in ("bogus", "cuda", "cuda:99"):
        add("predict", f"device-{dev}", ["predict", ckpt, clip, "--device", dev], "unusable device")
    add("predict", "layout-unknown", ["predict", ckpt, clip, "--layout", "no-such"], "unknown layout")
    add("predict", "layout-other", ["predict", ckpt, clip, "--layout", "coco-17"], "layout mismatch")
    # ------------------------------------------------------------------ render
    add("render", "ok", ["render", clip, "--out", str(root / "r.gif"), "--layout", "openpose-18", "--fps", "5"])
    for k, p in clips.items():
        add("render", f"input-{k}", ["render", p, "--out", str(root / "r.gif"), "--layout", "openpose-18"],
            "malformed input")
    for k, v in NUMBERS.items():
        add("render", f"fps-{k}", ["render", clip, "--out", str(root / "r.gif"), "--layout", "openpose-18", "--fps", v],
            "bad --fps")
    for k, o in {"dir": f.special("dir", "r.gif"), "suffix": str(root / "r.xyz"),
                 "no-parent": str(root / "none" / "r.gif"), "proc": "/proc/version/r.gif"}.items():
        add("render", f"out-{k}", ["render", clip, "--out", o, "--layout", "openpose-18"], "unwritable --out")
    add("render", "channels-bogus", ["render", clip, "--out", str(root / "r.gif"), "--layout", "openpose-18",
                                     "--channels", "q,r"], "unknown channels")
    add("render", "no-layout", ["render", clip, "--out", str(root / "r.gif")], "no layout given")
    add("render", "checkpoint-bad", ["render", clip, "--out", str(root / "r.gif"), "--checkpoint",
                                     bad_ckpts["ckpt-truncated-half"]], "malformed checkpoint")
    # ------------------------------------------------------------------ plot-graph
    add("plot-graph", "ok", ["plot-graph", ckpt, "--out", str(root / "g.png")])
    for k, p in bad_ckpts.items():
        add("plot-graph", k, ["plot-graph", p, "--out", str(root / "g.png")], "malformed checkpoint")
    add("plot-graph", "out-suffix", ["plot-graph", ckpt, "--out", str(root / "g.xyz")], "unknown suffix")
    add("plot-graph", "out-dir", ["plot-graph", ckpt, "--out", f.special("dir", "g.png")], "--out is a directory")
    # ------------------------------------------------------------------ export
    add("export", "ok-torchscript", ["export", ckpt, "--format", "torchscript", "--out", str(root / "m.ts"),
                                     "--frames", "16"])
    for k, p in bad_ckpts.items():
        add("export", k, ["export", p, "--format", "torchscript", "--out", str(root / "m.ts")], "malformed checkpoint")
    for opt in ("--frames", "--atol", "--opset"):
        for k, v in NUMBERS.items():
            add("export", f"{opt[2:]}-{k}", ["export", ckpt, "--format", "onnx" if opt == "--opset" else "torchscript",
                                             "--out", str(root / "m.x"), opt, v], f"bad {opt}")
    for k, o in {"dir": f.special("dir", "m.ts"), "no-parent": str(root / "none" / "m.ts"),
                 "proc": "/proc/version/m.ts"}.items():
        add("export", f"out-{k}", ["export", ckpt, "--format", "torchscript", "--out", o], "unwritable --out")
    # ------------------------------------------------------------------ video / pose
    vid, vck = str(fx["video"]), str(fx["video_ckpt"])
    V = ["--max-frames", "30"]  # a second of the demo video: enough for a person and a prediction
    vids = {k: v for k, v in f.variants("v.mp4", fx["video"].read_bytes()).items()}
    vids["text"] = f.write("v.mp4", b"not a video")
    add("video", "ok", ["video", vid, *V, "--checkpoint", vck, "--json", str(root / "v.json")])
    for k, p in vids.items():
        add("video", f"video-{k}", ["video", p, *V, "--checkpoint", vck, "--json", str(root / "v.json")],
            "not a video")
    add("video", "checkpoint-bad", ["video", vid, *V, "--checkpoint", bad_ckpts["ckpt-text"], "--json",
                                    str(root / "v.json")], "malformed checkpoint")
    add("video", "no-output", ["video", vid, *V, "--checkpoint", vck], "neither --out nor --json")
    for opt in ("--max-frames", "--max-people", "--topk"):
        for k, v in NUMBERS.items():
            add("video", f"{opt[2:]}-{k}", ["video", vid, *V, "--checkpoint", vck, "--json", str(root / "v.json"),
                                             opt, v], f"bad {opt}")
    add("pose", "ok", ["pose", vid, *V, "--out", str(root / "p.json")])
    for k, p in vids.items():
        add("pose", f"video-{k}", ["pose", p, *V, "--out", str(root / "p.json")], "not a video")
    add("pose", "out-suffix", ["pose", vid, *V, "--out", str(root / "p.xyz")], "unknown --out suffix")
    for k, v in NUMBERS.items():
        add("pose", f"max-frames-{k}", ["pose", vid, *V, "--out", str(root / "p.json"), "--max-frames", v],
            "bad --max-frames")
    # ------------------------------------------------------------------ live
    lines = str(fx["lines"])
    add("live", "ok", ["live", "--source", lines, "--checkpoint", vck])
    add("live", "ok-stdin", ["live", "--source", "-", "--checkpoint", vck], stdin=lines)
    frame = json.loads(fx["lines"].read_text().splitlines()[0])
    bad_lines = {"not-json": b"{nope\n", "non-utf8": b'{"people": "\xff"}\n',
                 "deep": b"[" * 50_000 + b"]" * 50_000 + b"\n",
                 "people-str": json.dumps({**frame, "people": "x"}).encode(),
                 "joints-5": json.dumps({**frame, "people": [[[1.0, 2.0, 0.9]] * 5]}).encode(),
                 "coords-nan": json.dumps({**frame, "people": [[[float("nan")] * 3] * 18]}).encode(),
                 "coords-huge": json.dumps({**frame, "people": [[[1e308, 1e308, 1.0]] * 18]}).encode(),
                 "image-size-zero": json.dumps({**frame, "image_size": [0, 0]}).encode(),
                 "time-backwards": (json.dumps({**frame, "time": 5.0}) + "\n"
                                    + json.dumps({**frame, "time": 1.0})).encode(),
                 "people-10000": json.dumps({**frame, "people": [[[1.0, 2.0, 0.9]] * 18] * 10000}).encode()}
    for k, data in bad_lines.items():
        add("live", f"lines-{k}", ["live", "--source", f.write("f.jsonl", data + b"\n"), "--checkpoint", vck],
            "malformed keypoint line")
    for kind in ("missing", "dir", "fifo"):
        add("live", f"source-{kind}", ["live", "--source", f.special(kind, "f.jsonl"), "--checkpoint", vck],
            "unreadable source")
    add("live", "checkpoint-bad", ["live", "--source", lines, "--checkpoint", bad_ckpts["ckpt-empty"]],
        "malformed checkpoint")
    for opt in ("--fps", "--threshold", "--smooth", "--detect-every", "--max-age", "--max-people"):
        for k, v in NUMBERS.items():
            add("live", f"{opt[2:]}-{k}", ["live", "--source", lines, "--checkpoint", vck, opt, v], f"bad {opt}")
    for k, v in {"syntax": "falling", "unknown-label": "nope>=0.5:1s", "score-nan": "a>=nan:1s",
                 "seconds-neg": "a>=0.5:-1s"}.items():
        add("live", f"trigger-{k}", ["live", "--source", lines, "--checkpoint", vck, "--trigger", v], "bad --trigger")
    for k, v in {"zero": "0,0", "word": "a,b", "one": "640"}.items():
        add("live", f"image-size-{k}", ["live", "--source", lines, "--checkpoint", vck, "--image-size", v],
            "bad --image-size")
    return cases


def _npz(arrays: dict) -> bytes:
    import io

    b = io.BytesIO()
    np.savez(b, **arrays)
    return b.getvalue()


# --------------------------------------------------------------------------------------------- main
def summarise(details: list[dict]) -> dict:
    """Per command: generated, clean, not clean, absent and the count of each class."""
    per: dict[str, Counter] = {}
    for d in details:
        per.setdefault(d["command"], Counter())[d["class"]] += 1
    summary = {cmd: {"generated": sum(c.values()), "clean": sum(c[k] for k in CLEAN),
                     "not_clean": sum(v for k, v in c.items() if k not in CLEAN and k != "absent"),
                     "absent": c["absent"], "by_class": dict(sorted(c.items()))} for cmd, c in sorted(per.items())}
    total = Counter()
    for s in summary.values():
        total.update({k: s[k] for k in ("generated", "clean", "not_clean", "absent")})
    return {"total": dict(total), "per_command": summary,
            "not_clean_cases": [d for d in details if d["class"] not in CLEAN and d["class"] != "absent"],
            "silent_success_expectations": {f"{d['command']}/{d['case']}": d["expect"] for d in details
                                            if d["class"] == "silent_success"}}


def reclassify(result: dict) -> dict:
    """``result`` with its exit-0 cases classified again under the current :data:`OK_ANYWAY`."""
    details = result["cases"]
    for d in details:
        if d["rc"] == 0 and (d["command"], d["case"]) in OK_ANYWAY:
            d["expect"], d["class"] = "ok", "clean_success"
    return {**result, **summarise(details)}


def _commands(main, work: Path) -> set[str]:
    """The subcommands this tree has (``stgcn <cmd> --help`` exits 0)."""
    names = ("graph", "models", "convert", "prepare", "info", "train", "eval", "fuse", "predict", "render",
             "plot-graph", "export", "video", "pose", "live")
    return {n for n in names if run_case(main, [n, "--help"], work / "help", 120)["rc"] == 0}


def main_cli(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--label", required=True, help="name of the tree under test (e.g. before, after)")
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default /tmp/stgcn-trust-LABEL)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    p.add_argument("--only", default=None,
                   help="comma-separated commands to run (their cases replace those stored under --label)")
    p.add_argument("--out", type=Path, default=HERE / "benchmarks" / "results" / "trust.json")
    p.add_argument("--reclassify", action="store_true",
                   help="only classify LABEL's stored exit-0 cases again under the current expectations")
    args = p.parse_args(argv)
    if args.reclassify:
        merged = json.loads(args.out.read_text())
        merged[args.label] = reclassify(merged[args.label])
        args.out.write_text(json.dumps(merged, indent=1) + "\n")
        print(json.dumps({"label": args.label, "total": merged[args.label]["total"]}))
        return 0
    work = (args.work or Path(f"/tmp/stgcn-trust-{args.label}")).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    # import the heavy modules once, in the parent: every forked case then starts warm (a tree whose package
    # imports them eagerly and one that loads them on first use are measured alike)
    import importlib

    import stgcn
    from stgcn.cli import main

    for name in ("torch", "stgcn.engine.checkpoint", "stgcn.inference.predict", "stgcn.engine.evaluate",
                 "stgcn.engine.train", "stgcn.data.store", "stgcn.predict", "stgcn.evaluate", "stgcn.train"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass

    t0 = time.monotonic()
    fx = build_fixtures(main, work, args.timeout)
    shared = shared_cases(work, fx["ckpt"], fx["store"] / "manifest.json")
    cases = generate(fx, shared, work / "cases")
    present = _commands(main, work)
    only = set(args.only.split(",")) if args.only else None
    order = {(c.command, c.name): i for i, c in enumerate(cases)}
    details = []
    for i, case in enumerate(cases):
        if only and case.command not in only:
            continue
        if case.command not in present:
            cls, res = "absent", {"rc": None, "stderr": "", "seconds": 0}
        else:
            res = run_case(main, case.argv, work / "cwd" / f"{i:04d}", args.timeout, case.stdin)
            cls = classify(res, case.expect)
        details.append({"command": case.command, "case": case.name, "expect": case.expect, "class": cls,
                        "rc": res["rc"], "seconds": res["seconds"],
                        "stderr_tail": "" if cls in CLEAN else res["stderr"][-300:]})
        print(f"[{i + 1}/{len(cases)}] {case.command:10s} {case.name:32s} {cls}", flush=True)
    result = {"stgcn_file": str(Path(stgcn.__file__).parent), "timeout_s": args.timeout,
              "wall_s": round(time.monotonic() - t0, 1), **summarise(details), "cases": details}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(args.out.read_text()) if args.out.exists() else {}
    if only and "cases" in merged.get(args.label, {}):  # --only: replace those commands' cases, keep the rest
        kept = [d for d in merged[args.label]["cases"] if d["command"] not in only]
        details = sorted(kept + details, key=lambda d: order.get((d["command"], d["case"]), len(order)))
        result = {**result, **summarise(details), "cases": details,
                  "rerun": sorted(set(merged[args.label].get("rerun", [])) | only)}
    merged[args.label] = result
    args.out.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps({"label": args.label, "total": result["total"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
