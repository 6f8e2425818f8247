"""Live-pipeline benchmark: frames/s and the per-stage breakdown (decode, pose, tracking, ST-GCN) for one person
at 340 x 256 and for two people, and the end-to-end wall time of ``stgcn video`` on a 10 s demo clip.

Run from the repository root (needs ``../shared/data``, the 'video' extra and ai-edge-litert)::

    python -m benchmarks.live
    python -m benchmarks.live --window 150 --stride 30 --detect-every 5

Inputs: ``kinetics_demo/clean_and_jerk.mp4`` (one person, 340 x 256, 300 frames at 29.97 fps) and a two-person
video made with ffmpeg (the weightlifter and the tai chi clip side by side, 680 x 256) in a temporary folder;
the original Kinetics ST-GCN converted from ``st_gcn_kinetics``. The live runs read the files as fast as they
decode (not ``--realtime``), so frames/s is the pipeline's own throughput. The machine's load average is
recorded with the results (other processes share the cores). Writes ``benchmarks/results/live.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

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


def live_run(video: Path, predictor: Predictor, args: argparse.Namespace) -> dict:
    pipeline = LivePipeline(predictor, window=args.window, stride=args.stride)
    estimator = open_estimator("litert", max_people=None, detect_every=args.detect_every)
    events: list[dict] = []
    start = time.perf_counter()
    times = run_live(VideoSource(str(video)), pipeline, emit=events.append, estimator=estimator)
    wall = time.perf_counter() - start
    preds = [e for e in events if e["event"] == "prediction"]
    tracks: dict[int, list[str]] = {}
    for e in preds:
        tracks.setdefault(e["track"], []).append(e["label"])
    latencies = sorted(e["latency_ms"] for e in preds if not e.get("final"))
    return {"video": video.name, **times.to_dict(), "wall_s": round(wall, 2),
            "wall_frames_per_s": round(times.frames / wall, 2),
            "tracks": {str(k): {"windows": len(v), "last_label": v[-1]} for k, v in tracks.items()},
            "latency_ms_median": latencies[len(latencies) // 2] if latencies else None,
            "latency_ms_max": latencies[-1] if latencies else None}


def video_command(video: Path, checkpoint: Path, backend: str) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "stgcn", "video", str(video), "--checkpoint", str(checkpoint),
                           "--backend", backend], capture_output=True, text=True, env={**os.environ,
                                                                                       "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    clip = next((line for line in proc.stdout.splitlines() if line.startswith("clip:")), proc.stderr[-200:])
    return {"command": f"stgcn video {video.name} --backend {backend}", "wall_s": round(wall, 2),
            "status": proc.returncode, "clip": clip}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=150, help="frames per window (default 150, 5 s)")
    parser.add_argument("--stride", type=int, default=30, help="frames between a person's windows (default 30)")
    parser.add_argument("--detect-every", type=int, default=5, help="person detector every n-th frame")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"shared data not found at {DATA}", file=sys.stderr)
        return 1
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ck = kinetics_checkpoint(folder)
        predictor = Predictor.from_checkpoint(ck)
        one = DATA / "kinetics_demo" / "clean_and_jerk.mp4"
        two = two_people_video(folder)
        runs = {"one_person_340x256": live_run(one, predictor, args),
                "two_people_680x256": live_run(two, predictor, args)}
        commands = [video_command(one, ck, "auto"), video_command(one, ck, "litert")]
    result = {
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "loadavg_before": [round(x, 2) for x in load_before],
                    "loadavg_after": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"window": args.window, "stride": args.stride, "detect_every": args.detect_every,
                     "pose": "litert BlazePose full, every person", "model": "original ST-GCN Kinetics-400"},
        "live": runs, "stgcn_video": commands,
    }
    for name, r in runs.items():
        print(f"{name}: {r['frames_per_s']:.1f} frames/s (pipeline), {r['wall_frames_per_s']:.1f} wall; per frame "
              f"decode {r['decode_ms_per_frame']:.1f} ms, pose {r['pose_ms_per_frame']:.1f}, tracking "
              f"{r['tracking_ms_per_frame']:.2f}, ST-GCN {r['stgcn_ms_per_frame']:.1f}; tracks {r['tracks']}")
    for c in commands:
        print(f"{c['command']}: {c['wall_s']:.1f} s ({c['clip']})")
    print(f"load average {result['machine']['loadavg_before']} -> {result['machine']['loadavg_after']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
