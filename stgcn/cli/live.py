"""``stgcn live``: a camera, stream, video file or keypoint lines in; one JSON line per event out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from stgcn.errors import ConfigError
from stgcn.utils.checks import check_int, check_number


def _size_arg(value: str) -> tuple[float, float]:
    try:
        w, h = (float(v) for v in value.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected W,H (e.g. 1280,720), got {value!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive W,H, got {value!r}")
    return w, h


def add_live_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.cli.inference import _add_window_args
    from stgcn.inference.decisions import SMOOTHING_MODES
    from stgcn.inference.pose import POSE_BACKENDS

    p = sub.add_parser(
        "live", help="live, multi-person recognition from a camera, stream, video or keypoint lines",
        description="Track every person of a camera (--source 0), a stream URL (rtsp://, http://), a video file "
                    "(played as live; --realtime at its frame rate) or keypoint frames as JSON lines (a .jsonl "
                    "file, or - for stdin: stgcn, OpenPose, MMPose/RTMPose or YOLO-pose JSON per frame) and print "
                    "one JSON line per event: track_start, prediction (time, frame, track, label, score, topk, "
                    "latency_ms; causal: only frames up to it), trigger, track_end. Runs until the source ends "
                    "or Ctrl-C (the last events are flushed). Video input needs the 'video' extra.")
    p.add_argument("--source", required=True, help="camera index, stream URL, video file, .jsonl keypoints or -")
    p.add_argument("--checkpoint", type=Path, required=True, help="stgcn checkpoint")
    p.add_argument("--realtime", action="store_true", help="play a video file at its frame rate")
    p.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    p.add_argument("--max-people", type=int, default=None, help="most people per frame (default: no limit)")
    p.add_argument("--backend", default="auto", choices=POSE_BACKENDS,
                   help="pose backend: litert (every person; default when installed) or mediapipe (one person)")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                   help="pose model: 1 full (default; the only one shipped in the mediapipe 0.10.14 wheel and in "
                        "stgcn); 0 lite and 2 heavy only with mediapipe when already downloaded")
    p.add_argument("--image-size", type=_size_arg, default=None,
                   help="W,H of keypoint frames that do not give image_size")
    p.add_argument("--fps", type=float, default=30.0, help="frame rate of keypoint frames without 'time'")
    p.add_argument("--threshold", type=float, default=0.0, help="smoothed score under which the label is 'unknown'")
    p.add_argument("--smooth", type=int, default=1, help="windows to smooth over (default 1: none)")
    p.add_argument("--smooth-mode", default="mean", choices=SMOOTHING_MODES, help="mean of probabilities or "
                   "majority of top-1 labels over --smooth windows")
    p.add_argument("--trigger", action="append", default=[], metavar="LABEL>=SCORE:SECONDS",
                   help="emit a trigger event when LABEL's smoothed score stays >= SCORE for SECONDS, e.g. "
                        "'falling>=0.8:1s' (repeatable)")
    p.add_argument("--detect-every", type=int, default=5,
                   help="look for new people every n-th frame while someone is tracked (litert; default 5)")
    p.add_argument("--pose-threads", type=int, default=None,
                   help="CPU threads of the pose models (litert; default: 2 on 2 cores, else all but one, at most 4)")
    p.add_argument("--model-threads", type=int, default=None,
                   help="CPU threads of the ST-GCN (torch; default: the cores the pose stage leaves, at least 1)")
    p.add_argument("--sync", action="store_true",
                   help="run the model in the loop's own thread (default: a background thread, so that the pose "
                        "of the next frames goes on while a window is classified)")
    p.add_argument("--max-age", type=int, default=30, help="frames a lost person is kept for re-identification")
    p.add_argument("--out", type=Path, default=None, help="annotated .mp4 to write (video sources)")
    p.add_argument("--show", action="store_true", help="show the annotated video in a window (q stops)")
    p.add_argument("--stats", action="store_true", help="print the per-stage timing as a last JSON line")
    _add_window_args(p, sliding_by_default=True)
    p.set_defaults(func=cmd_live)


def cmd_live(args: argparse.Namespace) -> int:
    import torch

    from stgcn.cli.inference import _MAX_FPS, _MIN_FPS, _predictor, _window
    from stgcn.inference.background import split_threads, torch_threads
    from stgcn.inference.decisions import parse_trigger
    from stgcn.inference.live import LivePipeline
    from stgcn.inference.live_run import run_live
    from stgcn.inference.sources import open_source
    from stgcn.inference.tracker import Tracker

    check_number(args.fps, "--fps", minimum=_MIN_FPS, maximum=_MAX_FPS)
    check_int(args.detect_every, "--detect-every")
    if args.max_people is not None:
        check_int(args.max_people, "--max-people", minimum=0)
    if args.out is not None and args.out.suffix.lower() != ".mp4":
        raise ConfigError(f"{args.out}: the annotated video must end in .mp4")
    pose_threads, model_threads = split_threads()
    if args.pose_threads is not None:
        pose_threads = check_int(args.pose_threads, "--pose-threads")
    if args.model_threads is not None:
        model_threads = check_int(args.model_threads, "--model-threads")
    predictor = _predictor(args)
    triggers = tuple(parse_trigger(t, predictor.class_names) for t in args.trigger)
    pipeline = LivePipeline(predictor, window=_window(args), stride=args.stride, topk=args.topk,
                            threshold=args.threshold, smooth=args.smooth, smooth_mode=args.smooth_mode,
                            triggers=triggers, tracker=Tracker(max_age=args.max_age), background=not args.sync)
    source = open_source(args.source, realtime=args.realtime, max_frames=args.max_frames, fps=args.fps,
                         image_size=args.image_size)
    estimator = None
    if source.kind != "keypoints":
        from stgcn.inference.estimators import open_estimator

        try:
            estimator = open_estimator(args.backend, max_people=args.max_people,
                                       model_complexity=args.model_complexity, detect_every=args.detect_every,
                                       num_threads=pose_threads)
        except BaseException:
            source.close()
            raise
    elif args.model_threads is None:
        model_threads = torch.get_num_threads()  # no pose stage to share the cores with

    def emit(event: dict) -> None:
        print(json.dumps(event), flush=True)

    with torch_threads(model_threads):  # the model's share of the cores (its thread starts inside)
        times = run_live(source, pipeline, emit=emit, estimator=estimator, out=args.out, show=args.show)
    if args.stats:
        print(json.dumps({"event": "stats", **times.to_dict()}), flush=True)
    print(f"{times.frames} frames, {len(pipeline.ended)} tracks", file=sys.stderr)
    return 0
