"""Live-pipeline benchmark: frames/s, latency and the per-stage breakdown (decode, pose, tracking, ST-GCN) for one
person at 340 x 256 and for two people, and the end-to-end time of ``stgcn video`` on a 10 s demo clip.

Run from the repository root (needs ``../shared/data``, the 'video' extra and ai-edge-litert)::

    python -m benchmarks.live                      # the full JSON and a table, a few minutes
    python -m benchmarks.live --repeats 1 --compare

Inputs: ``kinetics_demo/clean_and_jerk.mp4`` (one person, 340 x 256, 300 frames at 29.97 fps) and a two-person
video made with ffmpeg (the weightlifter and the tai chi clip side by side, 680 x 256) in a temporary folder;
the original Kinetics ST-GCN converted from ``st_gcn_kinetics``. The live runs are what ``stgcn live`` does (the
model in a background thread, the cores split between pose and model by
:func:`stgcn.inference.background.split_threads`) on the files read as fast as they decode (not ``--realtime``), so
frames/s is the pipeline's own throughput (``frames / wall``, warm-up excluded). Each run is repeated
``--repeats`` times; the run with the median frame rate is reported, with all rates. Every figure comes with the
load average of the machine when it was taken and with CPU seconds (per stage: the CPU time of the thread that did
the work; per run: the process's), which other processes inflate much less than wall time. ``--compare`` adds the
configuration before the speed work (model in the loop's thread, torch and LiteRT at their thread defaults).
Writes ``benchmarks/results/live.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from stgcn.inference.background import split_threads, torch_threads
from stgcn.inference.estimators import open_estimator
from stgcn.inference.live import LivePipeline
from stgcn.inference.live_run import run_live
from stgcn.inference.predict import Predictor
from stgcn.inference.sources import VideoSource

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "live.json"


def kinetics_checkpoint(folder: Path) -> Path:
    from stgcn.convert.original import convert_original
    from stgcn.engine.checkpoint import save_checkpoint

    model = convert_original(DATA / "st_gcn_kinetics" / "st_gcn.kinetics.fp32_from_int8.pt", layout="openpose-18",
                             strategy="spatial", num_classes=400)
    names = (DATA / "kinetics_demo" / "kinetics400_label_name.txt").read_text().splitlines()
    path = folder / "kinetics.pt"
    save_checkpoint(path, model, class_names=names)
    return path


def two_people_video(folder: Path) -> Path:
    import imageio_ffmpeg

    out = folder / "two.mp4"
    demo = DATA / "kinetics_demo"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(demo / "clean_and_jerk.mp4"),
                    "-i", str(demo / "ta_chi.mp4"), "-filter_complex", "[0:v][1:v]hstack=inputs=2,format=yuv420p",
                    "-t", "10", "-c:v", "libx264", "-preset", "veryfast", str(out)], check=True)
    return out


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def live_run(video: Path, predictor: Predictor, args: argparse.Namespace, *, background: bool,
             pose_threads: int, model_threads: int) -> dict:
    """One ``stgcn live``-like run over a file; the events' labels, latencies and the stage times."""
    with torch_threads(model_threads):
        pipeline = LivePipeline(predictor, window=args.window, stride=args.stride, background=background)
        estimator = open_estimator("litert", max_people=None, detect_every=args.detect_every,
                                   num_threads=pose_threads)
        events: list[dict] = []
        load = _load()
        cpu = time.process_time()
        times = run_live(VideoSource(str(video)), pipeline, emit=events.append, estimator=estimator)
        cpu = time.process_time() - cpu
    preds = [e for e in events if e["event"] == "prediction"]
    tracks: dict[int, list[str]] = {}
    for e in preds:
        tracks.setdefault(e["track"], []).append(e["label"])
    latencies = sorted(e["latency_ms"] for e in preds if not e.get("final"))
    return {"video": video.name, "loadavg_1min": load, **times.to_dict(), "pose_models": estimator.timings(),
            "process_cpu_ms_per_frame": round(1000 * cpu / max(times.frames, 1), 2),
            "tracks": {str(k): {"windows": len(v), "last_label": v[-1]} for k, v in tracks.items()},
            "latency_ms_median": latencies[len(latencies) // 2] if latencies else None,
            "latency_ms_max": latencies[-1] if latencies else None}


def repeated(n: int, run) -> dict:
    """Run ``n`` times; the run with the median frame rate, plus every run's rate and load."""
    runs = [run() for _ in range(n)]
    runs.sort(key=lambda r: r["frames_per_s"])
    best = dict(runs[len(runs) // 2])
    best["all_frames_per_s"] = [r["frames_per_s"] for r in runs]
    best["all_loadavg_1min"] = [r["loadavg_1min"] for r in runs]
    return best


def video_command(video: Path, checkpoint: Path, backend: str) -> dict:
    """Wall and CPU time of a whole ``stgcn video`` command (start-up included)."""
    load = _load()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stgcn", "video", str(video), "--checkpoint", str(checkpoint),
                           "--backend", backend], capture_output=True, text=True, env={**os.environ,
                                                                                       "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    clip = next((line for line in proc.stdout.splitlines() if line.startswith("clip:")), proc.stderr[-200:])
    return {"command": f"stgcn video {video.name} --backend {backend}", "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "loadavg_1min": load, "status": proc.returncode, "clip": clip}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=150, help="frames per window (default 150, 5 s)")
    parser.add_argument("--stride", type=int, default=30, help="frames between a person's windows (default 30)")
    parser.add_argument("--detect-every", type=int, default=5, help="person detector every n-th frame")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (the median is reported)")
    parser.add_argument("--compare", action="store_true",
                        help="also run the configuration before the speed work (model in the loop's thread, "
                             "default thread counts)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    pose_threads, model_threads = split_threads()
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ck = kinetics_checkpoint(folder)
        predictor = Predictor.from_checkpoint(ck)
        one = DATA / "kinetics_demo" / "clean_and_jerk.mp4"
        two = two_people_video(folder)
        configs = {"": dict(background=True, pose_threads=pose_threads, model_threads=model_threads)}
        if args.compare:
            configs[" (before: model in the loop, default threads)"] = dict(
                background=False, pose_threads=2, model_threads=default_threads)
        runs = {}
        for suffix, config in configs.items():
            for name, video in (("one_person_340x256", one), ("two_people_680x256", two)):
                runs[name + suffix] = repeated(args.repeats,
                                               lambda v=video, c=config: live_run(v, predictor, args, **c))
        commands = [video_command(one, ck, backend) for backend in ("auto", "litert", "mediapipe")]
    result = {
        "machine": {"cpu_count": os.cpu_count(), "torch_default_threads": default_threads,
                    "pose_threads": pose_threads, "model_threads": model_threads,
                    "python": platform.python_version(), "torch": torch.__version__,
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"window": args.window, "stride": args.stride, "detect_every": args.detect_every,
                     "repeats": args.repeats, "pose": "litert BlazePose full, every person",
                     "model": "original ST-GCN Kinetics-400"},
        "live": runs, "stgcn_video": commands,
    }
    print(f"{'run':<60} {'fps':>6} {'decode':>7} {'pose':>7} {'track':>6} {'ST-GCN':>7} {'lat ms':>7} {'load':>5}")
    print(f"{'':<60} {'':>6} {'ms/frame wall (thread CPU)':>29}")
    for name, r in runs.items():
        stages = " ".join(f"{r[f'{s}_ms_per_frame']:>5.1f}({r[f'{s}_cpu_ms_per_frame']:.1f})"
                          for s in ("decode", "pose", "tracking", "stgcn"))
        print(f"{name:<60} {r['frames_per_s']:>6.1f} {stages} {r['latency_ms_median'] or 0:>7.0f} "
              f"{r['loadavg_1min']:>5.1f}  tracks {r['tracks']}")
    for name, r in runs.items():
        models = ", ".join(f"{m} {t['calls']} calls x {t['wall_ms_per_call']:.1f} ms ({t['cpu_ms_per_call']:.1f} CPU)"
                           for m, t in r["pose_models"].items())
        print(f"  {name}: pose models: {models}")
    for c in commands:
        print(f"{c['command']:<60} {c['wall_s']:>6.1f} s wall, {c['cpu_s']:.1f} s CPU, load {c['loadavg_1min']}: "
              f"{c['clip']}")
    print(f"load average {result['machine']['loadavg_before']} -> {result['machine']['loadavg_after']}; "
          f"threads: pose {pose_threads}, model {model_threads}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
