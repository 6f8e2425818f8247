"""The GPU part of the accuracy issue as ONE command on a GPU machine that receives only the working tree.

Within a wall-clock ``--deadline`` (seconds from start) it

1. measures throughput (``python -m benchmarks.gpu``, fp32 and AMP bf16: NW-UCLA, 2-D recipe and NTU-300 shapes,
   batch 16 and 128, ours against the original structure) and picks the faster precision of our training step
   at the NW-UCLA shape for the trainings;
2. trains, as concurrent processes on the one GPU, NW-UCLA with the shipped CTR-GCN recipe unchanged
   (``configs/nw-ucla-*.yaml``: 65 epochs x 5 repeats, batch 16): joint with seeds 1, 2, 3 and bone, joint-motion,
   bone-motion with seed 1; and MSR Action3D cross-subject (``configs/msr-action3d-xsub.yaml`` with
   ``train.repeat`` raised, ``--msr-repeat``) with seeds 1, 2, 3. A supervisor reads each run's
   ``metrics.jsonl`` and, when the runs would not all finish before the training deadline, stops the
   lowest-priority run still going (SIGINT: it keeps its resumable ``last.pt``) so the others speed up; at the
   deadline every run still going is stopped;
3. evaluates every run's ``final.pt`` (a stopped run's ``last.pt``, labelled partial) and fuses joint + bone and
   the four NW-UCLA streams (``stgcn fuse``);
4. with the time left, the ``torch.compile`` throughput points;

and writes under ``--out`` (at most 8 files): ``summary.json`` (per run: epochs done, last- and best-epoch
top-1, wall time; fusions; the precision chosen), ``gpu.json`` / ``gpu_compile.json`` (throughput),
``session.log``, ``runs.tgz`` (each run's metrics.jsonl, train.log, config, eval JSON and scores; no
checkpoints).

Prepare on the CPU machine (``data/`` is git-ignored and travels by ``carry``)::

    stgcn prepare nw-ucla ../shared/data/nw_ucla/all_sqe data/nw-ucla
    stgcn prepare msr-action3d ../shared/data/msr_action3d data/msr-action3d

On the device (``run(command=..., carry=["data/nw-ucla", "data/msr-action3d"], timeout_s=590)``)::

    PYTHONPATH=$PWD python -m benchmarks.gpu_session --out $OUT --deadline 540

Dry run on a CPU (the same code path on tiny synthetic stores it writes itself, 2 epochs, 16 frames)::

    python -m benchmarks.gpu_session --dry-run --out /tmp/gpu-dry --deadline 400

Before anything starts, every run's config is loaded with its overrides and its store opened (train and test
splits), and ``--device cuda`` must see a GPU: a missing ``carry`` costs one ``error:`` line and exit status 2,
not a device call.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PREPARE = {"nw-ucla": "stgcn prepare nw-ucla ../shared/data/nw_ucla/all_sqe data/nw-ucla",
           "msr-action3d": "stgcn prepare msr-action3d ../shared/data/msr_action3d data/msr-action3d"}


def make_dry_stores(folder: Path, msr: bool) -> tuple[str, str]:
    """Tiny synthetic stand-ins for the NW-UCLA and MSR Action3D stores (their layouts and class counts)."""
    from stgcn.data.synthetic import make_synthetic_store

    ucla = make_synthetic_store(folder / "nw-ucla", num_classes=10, clips_per_class=6, layout="kinect-v1",
                                overwrite=True)
    if not msr:
        return str(ucla.path), ""
    msr_store = make_synthetic_store(folder / "msr-action3d", num_classes=20, clips_per_class=3,
                                     layout="kinect-v1-msr", overwrite=True)
    return str(ucla.path), str(msr_store.path)


@dataclass
class Run:
    """One training process: its name, config, overrides, and what the supervisor knows of it."""

    name: str
    config: str
    store: str
    seed: int
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ended: float | None = None
    stopped: str | None = None  # why the supervisor stopped it

    def records(self, runs_dir: Path) -> list[dict[str, Any]]:
        path = runs_dir / self.name / "metrics.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written
                break
        return out


class Session:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.t0 = time.monotonic()
        self.out: Path = args.out
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs_dir: Path = args.runs
        self.summary: dict[str, Any] = {"deadline_s": args.deadline, "dry_run": args.dry_run, "runs": {},
                                        "fusions": {}}

    # -- helpers ---------------------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def log(self, message: str) -> None:
        line = f"[{self.elapsed():6.1f}s] {message}"
        print(line, flush=True)
        with open(self.out / "session.log", "a") as f:
            f.write(line + "\n")

    def save_summary(self) -> None:
        from stgcn.utils.atomic import atomic_write_text

        atomic_write_text(self.out / "summary.json", json.dumps(self.summary, indent=1))

    def python(self, *argv: str) -> list[str]:
        return [sys.executable, *argv]

    def env(self, threads: int) -> dict[str, str]:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
        return env

    def call(self, argv: list[str], timeout: float, log_name: str) -> int | None:
        """Run a command with a timeout (SIGINT, then SIGKILL); its output to ``runs/<log_name>``; the status."""
        if timeout <= 1:
            self.log(f"skipped {log_name}: no time left")
            return None
        with open(self.runs_dir / log_name, "w") as f:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=self.env(self.args.threads),
                                    cwd=ROOT)
            try:
                return proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                self.log(f"{log_name}: stopped at its time limit ({timeout:.0f}s)")
                return None

    # -- 1. throughput -----------------------------------------------------------------------------------------
    def benchmark(self, precisions: list[str], out_name: str, budget: float) -> None:
        a = self.args
        argv = self.python("-m", "benchmarks.gpu", "--device", a.device, "--precisions", *precisions,
                           "--shapes", *a.bench_shapes, "--out", str(self.out / out_name), "--budget",
                           str(max(budget - 40, 1)))
        argv += ["--quick"] if a.dry_run else ["--rounds", "10", "--warmup", "3"]
        self.log(f"benchmark {' '.join(precisions)} (budget {budget:.0f}s)")
        status = self.call(argv, budget, out_name.replace(".json", ".log"))
        self.log(f"benchmark {' '.join(precisions)} ended (status {status})")

    def choose_amp(self) -> str:
        """``bf16`` when AMP bf16 made our training step faster than fp32 at the NW-UCLA shape, batch 16."""
        path = self.out / "gpu.json"
        points = json.loads(path.read_text()).get("points", []) if path.exists() else []
        rates = {p["precision"]: p["training"]["stgcn"]["clips_per_s_median"] for p in points
                 if p["shape"] == "ucla52" and p["batch"] == 16}
        amp = "bf16" if rates.get("bf16", 0) > rates.get("fp32", 0) else "none"
        self.summary["amp_choice"] = {"rates_clips_per_s": rates, "amp": amp}
        self.log(f"training precision: amp={amp} (ours at ucla52: {rates})")
        return amp

    # -- 0. before anything starts -------------------------------------------------------------------------------
    def preflight(self) -> str | None:
        """Why the session cannot run (one line), or None: each run's config and store, and the device."""
        from stgcn.data.store_reader import open_store
        from stgcn.engine.config import load_config
        from stgcn.errors import ConfigError, DataError

        for run in self.runs():
            try:
                config = load_config(ROOT / run.config, [f"data.store={run.store}", *run.extra,
                                                         *self.args.train_set])
                store = open_store(ROOT / config.data.store)
                for split in (config.data.train_split, config.data.test_split):
                    store.split(split)
            except (ConfigError, DataError) as e:
                hint = PREPARE.get(Path(run.store).name, "")
                return f"{run.name}: {e}" + (f" (on the CPU machine: {hint}; then name it in carry)" if hint else "")
        if self.args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return f"--device {self.args.device}: torch {torch.__version__} sees no CUDA device"
        return None

    # -- 2. trainings --------------------------------------------------------------------------------------------
    def runs(self) -> list[Run]:
        """The trainings, highest priority first."""
        a = self.args
        ucla, msr = a.ucla_store, a.msr_store
        runs = [Run("ucla-joint-s1", "configs/nw-ucla-joint.yaml", ucla, 1),
                Run("ucla-bone-s1", "configs/nw-ucla-bone.yaml", ucla, 1),
                Run("ucla-joint_motion-s1", "configs/nw-ucla-joint-motion.yaml", ucla, 1),
                Run("ucla-bone_motion-s1", "configs/nw-ucla-bone-motion.yaml", ucla, 1),
                Run("ucla-joint-s2", "configs/nw-ucla-joint.yaml", ucla, 2),
                Run("ucla-joint-s3", "configs/nw-ucla-joint.yaml", ucla, 3)]
        if msr:
            runs += [Run(f"msr-xsub-s{s}", "configs/msr-action3d-xsub.yaml", msr, s,
                         [f"train.repeat={a.msr_repeat}"]) for s in (1, 2, 3)]
        return runs

    def start(self, run: Run, amp: str) -> None:
        a = self.args
        sets = [f"data.store={run.store}", f"train.seed={run.seed}", f"train.device={a.device}",
                f"train.num_workers={a.workers}", *run.extra, *a.train_set]
        if amp != "none":
            sets.append(f"train.amp={amp}")
        if a.device != "cpu":
            sets.append("train.cudnn_benchmark=true")
        argv = self.python("-m", "stgcn", "train", run.config, "--out", str(self.runs_dir / run.name), "--quiet")
        for s in sets:
            argv += ["--set", s]
        log = open(self.runs_dir / f"{run.name}.stdout", "w")
        run.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env(a.threads), cwd=ROOT)
        run.started = time.monotonic()

    def stop(self, run: Run, why: str) -> None:
        if run.proc is not None and run.proc.poll() is None:
            run.stopped = why
            run.proc.send_signal(signal.SIGINT)
            self.log(f"stopping {run.name}: {why}")

    def epoch_time(self, run: Run, since: float = 0.0) -> float | None:
        """Wall seconds per epoch of ``run`` over its last (up to 5) epochs observed after ``since``."""
        times = [t for t in self.mtimes[run.name] if t >= since][-5:]
        if len(times) < 3 or times[-1] <= times[0]:
            return None
        return (times[-1] - times[0]) / (len(times) - 1)

    def projected_end(self, run: Run, epochs: int, since: float) -> float | None:
        """Seconds from session start at which the run would end at its recent epoch rate (None: too early)."""
        per_epoch = self.epoch_time(run, since) or self.epoch_time(run)
        if per_epoch is None:
            return None
        return self.elapsed() + (epochs - len(self.mtimes[run.name])) * per_epoch

    def train(self, amp: str, deadline: float) -> None:
        runs = self.runs()
        epochs = {r.name: self.epochs_of(r) for r in runs}
        for run in runs:
            self.start(run, amp)
        self.log(f"started {len(runs)} trainings; training deadline {deadline:.0f}s")
        self.records_cache: dict[str, list[dict[str, Any]]] = {}
        self.mtimes: dict[str, list[float]] = {r.name: [] for r in runs}
        last_stop = last_progress = 0.0
        before: dict[str, float] = {}  # per-epoch times just before the last stop
        stops_help = True  # cleared when a stop did not make the others faster (the GPU is not the bottleneck)
        while True:
            time.sleep(self.args.poll)
            active = [r for r in runs if r.proc is not None and r.proc.poll() is None]
            for r in runs:
                recs = r.records(self.runs_dir)
                if len(recs) > len(self.records_cache.get(r.name, [])):
                    self.mtimes[r.name] += [self.elapsed()] * (len(recs) - len(self.records_cache.get(r.name, [])))
                self.records_cache[r.name] = recs
                if r.ended is None and r.proc is not None and r.proc.poll() is not None:
                    r.ended = self.elapsed()
                    self.log(f"{r.name} exited with {r.proc.returncode} after {len(recs)}/{epochs[r.name]} epochs")
            if not active:
                break
            if self.elapsed() >= deadline:
                for r in active:
                    self.stop(r, "training deadline reached")
                for r in active:
                    r.proc.wait()
                continue
            if before and stops_help:  # did the last stop speed the others up?
                after = {r.name: self.epoch_time(r, since=last_stop) for r in active if r.name in before}
                if after and all(v is not None for v in after.values()):
                    ratio = sum(after.values()) / sum(before[n] for n in after)
                    self.log(f"after the stop the epochs take {ratio:.2f}x as long")
                    stops_help = ratio < 0.95
                    before = {}
            # would the runs finish in time? if not, free the GPU of the lowest-priority one
            ends = {r.name: self.projected_end(r, epochs[r.name], last_stop) for r in active}
            late = [r for r in active if ends[r.name] is not None and ends[r.name] > deadline]
            if late and len(active) > 1 and stops_help and not before and self.elapsed() - last_stop > self.args.settle:
                victim = active[-1]
                before = {r.name: t for r in active if r is not victim and (t := self.epoch_time(r)) is not None}
                self.stop(victim, f"{late[0].name} projected to end at {ends[late[0].name]:.0f}s > {deadline:.0f}s")
                last_stop = self.elapsed()
            if self.elapsed() - last_progress >= 30:
                last_progress = self.elapsed()
                progress = ", ".join(f"{r.name} {len(self.records_cache.get(r.name, []))}/{epochs[r.name]}"
                                     for r in active)
                self.log(f"progress: {progress}")
        for r in runs:
            self.summary["runs"][r.name] = self.run_summary(r, epochs[r.name])
        self.save_summary()

    def epochs_of(self, run: Run) -> int:
        from stgcn.engine.config import load_config

        overrides = [f"data.store={run.store}", *run.extra, *self.args.train_set]
        return load_config(ROOT / run.config, overrides).train.epochs

    def run_summary(self, run: Run, epochs: int) -> dict[str, Any]:
        recs = run.records(self.runs_dir)
        tests = [(r["epoch"], r["test_top1"]) for r in recs if "test_top1" in r]
        best = max(tests, key=lambda e: e[1]) if tests else None
        return {"config": run.config, "seed": run.seed, "overrides": run.extra, "epochs_done": len(recs),
                "epochs": epochs, "complete": len(recs) >= epochs, "stopped": run.stopped,
                "wall_s": None if run.ended is None else round(run.ended - (run.started - self.t0), 1),
                "last_top1": tests[-1][1] if tests else None, "last_epoch": tests[-1][0] if tests else None,
                "best_top1": best[1] if best else None, "best_epoch": best[0] if best else None,
                "train_clips_per_s": recs[-1].get("train_clips_per_s") if recs else None,
                "last_top5": next((r.get("test_top5") for r in reversed(recs) if "test_top5" in r), None)}

    # -- 3. evaluation and fusion --------------------------------------------------------------------------------
    def evaluate(self, deadline: float) -> None:
        procs = []
        for name, info in self.summary["runs"].items():
            run_dir = self.runs_dir / name
            # a stopped run has no final.pt (last.pt is a training state, not a model checkpoint): its best.pt,
            # chosen on the test split, labelled as such in the summary
            ckpt = run_dir / "final.pt" if (run_dir / "final.pt").exists() else run_dir / "best.pt"
            if not ckpt.exists():
                continue
            info["evaluated"] = ckpt.name
            store = self.args.msr_store if name.startswith("msr") else self.args.ucla_store
            argv = self.python("-m", "stgcn", "eval", str(ckpt), store, "--device", self.args.device, "--out",
                               str(run_dir / "eval-test"), "--no-plot", "--json")
            f = open(run_dir / "eval-test.json", "w")
            err = open(run_dir / "eval-test.stderr", "w")
            procs.append((name, subprocess.Popen(argv, stdout=f, stderr=err, env=self.env(1), cwd=ROOT)))
        for name, p in procs:
            try:
                p.wait(timeout=max(deadline - self.elapsed(), 1))
            except subprocess.TimeoutExpired:
                p.kill()
            try:
                self.summary["runs"][name]["eval"] = json.loads((self.runs_dir / name / "eval-test.json").read_text())
            except (OSError, json.JSONDecodeError):
                self.log(f"eval {name} failed")
        fusions = {"ucla-J+B": ["ucla-joint-s1", "ucla-bone-s1"],
                   "ucla-4s": ["ucla-joint-s1", "ucla-bone-s1", "ucla-joint_motion-s1", "ucla-bone_motion-s1"],
                   "ucla-joint-3seeds": ["ucla-joint-s1", "ucla-joint-s2", "ucla-joint-s3"]}
        for fname, parts in fusions.items():
            dirs = [self.runs_dir / p / "eval-test" for p in parts]
            if not all((d / "scores.npz").exists() for d in dirs):
                continue
            argv = self.python("-m", "stgcn", "fuse", *map(str, dirs), "--out", str(self.runs_dir / f"fuse-{fname}"),
                               "--no-plot", "--json")
            res = subprocess.run(argv, capture_output=True, text=True, env=self.env(1), cwd=ROOT,
                                 timeout=max(deadline - self.elapsed(), 5))
            try:
                complete = all(self.summary["runs"][p].get("evaluated") == "final.pt" for p in parts)
                self.summary["fusions"][fname] = {"parts": parts, "final_checkpoints": complete,
                                                  **json.loads(res.stdout)}
            except json.JSONDecodeError:
                self.log(f"fuse {fname} failed: {res.stderr.strip()[-300:]}")
        self.save_summary()
        self.log("evaluation done")

    # -- 4. pack ---------------------------------------------------------------------------------------------------
    def pack(self) -> None:
        with tarfile.open(self.out / "runs.tgz", "w:gz") as tar:
            for path in sorted(self.runs_dir.rglob("*")):
                if path.is_file() and path.suffix != ".pt" and ".tmp" not in path.name:
                    tar.add(path, arcname=str(path.relative_to(self.runs_dir.parent)))
        self.log(f"packed {self.out / 'runs.tgz'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_session", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gpu-out")))
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "gpu")
    p.add_argument("--deadline", type=float, default=540, help="seconds from start for everything")
    p.add_argument("--bench-budget", type=float, default=90,
                   help="seconds for the fp32/bf16 throughput points (0: none; the trainings then run in fp32)")
    p.add_argument("--eval-reserve", type=float, default=45, help="seconds kept for evaluation, fusion and packing")
    p.add_argument("--compile-min", type=float, default=60,
                   help="run the torch.compile points only when at least this many seconds are left (0: never; "
                        "run them in a second call: python -m benchmarks.gpu --precisions bf16-compile ...)")
    p.add_argument("--ucla-store", default="data/nw-ucla")
    p.add_argument("--msr-store", default="data/msr-action3d", help="empty: no MSR Action3D runs")
    p.add_argument("--msr-repeat", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers per training")
    p.add_argument("--threads", type=int, default=1, help="OMP threads per process")
    p.add_argument("--poll", type=float, default=5.0)
    p.add_argument("--settle", type=float, default=20.0, help="seconds between two supervisor stops")
    p.add_argument("--set", dest="train_set", action="append", default=[], help="extra override for every run")
    p.add_argument("--bench-shapes", nargs="+", default=["ucla52", "coco2d-100", "ntu300"])
    p.add_argument("--dry-run", action="store_true",
                   help="CPU check: tiny synthetic stores it writes itself, 2 epochs of one pass, 16 frames, "
                        "quick benchmark")
    args = p.parse_args(argv)
    if args.dry_run:
        args.device, args.workers = "cpu", 0
        args.ucla_store, args.msr_store = make_dry_stores(args.runs.parent / "gpu-dry-data", bool(args.msr_store))
        args.train_set = ["train.epochs=2", "train.repeat=1", "optim.warmup_epochs=0", "optim.milestones=[1]",
                          "data.preprocess.length=16", *args.train_set]
        args.msr_repeat = 1
        args.bench_shapes = ["ucla52"]
    s = Session(args)
    problem = s.preflight()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if s.runs_dir.exists():
        import shutil

        shutil.rmtree(s.runs_dir)
    s.runs_dir.mkdir(parents=True)
    import torch

    info = {"torch": torch.__version__, "cuda": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    s.summary["machine"] = info
    s.log(f"machine: {info}")
    if args.bench_budget > 0:
        s.benchmark(["fp32", "bf16"], "gpu.json", args.bench_budget)
    amp = "none" if args.dry_run or args.bench_budget <= 0 else s.choose_amp()
    s.save_summary()
    compile_reserve = args.compile_min if not args.dry_run else 0  # 0: no compile phase
    s.train(amp, args.deadline - args.eval_reserve - compile_reserve)
    s.evaluate(args.deadline - 15)
    left = args.deadline - s.elapsed() - 15
    if args.compile_min > 0 and left >= args.compile_min:
        s.benchmark(["bf16-compile"], "gpu_compile.json", left)
    s.pack()
    s.save_summary()
    s.log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
