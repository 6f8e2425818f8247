"""``stgcn predict``, ``video``, ``pose``, ``render``, ``plot-graph`` and ``export``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from stgcn.errors import ConfigError, DataError, StgcnError
from stgcn.graph.identity import REMAP_CHOICES
from stgcn.utils.checks import check_number
from stgcn.utils.safe_text import terminal_safe

if TYPE_CHECKING:
    from stgcn.inference.predict import Predictor


_MIN_FPS, _MAX_FPS = 0.1, 1000.0  # an animation's frame rate


def _window_arg(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'auto', got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of frames, got {n}")
    return n


def _add_window_args(p: argparse.ArgumentParser, *, sliding_by_default: bool) -> None:
    from stgcn.inference.predict import PRECISIONS, SHORT_POLICIES

    hint = "" if sliding_by_default else "; without it, one prediction per clip"
    p.add_argument("--window", type=_window_arg, default="auto" if sliding_by_default else None,
                   help="sliding-window length in frames, or 'auto' (the checkpoint's input length, else the "
                        f"model's temporal receptive field){hint}")
    p.add_argument("--stride", type=int, default=None, help="frames between windows (default: window // 2)")
    p.add_argument("--short", default="loop", choices=SHORT_POLICIES,
                   help="what to do with inputs shorter than --min-frames: loop the frames (default), pad "
                        "with zero frames (the original demo) or fail")
    p.add_argument("--min-frames", type=int, default=None,
                   help="shortest model input (default: the temporal receptive field, or the checkpoint's "
                        "fixed input length when shorter); 1 runs every window as it is")
    p.add_argument("--topk", type=int, default=5, help="classes to report (default 5)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32 (default) or bf16: the model in bfloat16, logits differ by about 1e-2; faster only "
                        "on CPUs with native bfloat16 (AVX512-BF16, AMX) and on GPUs, slower on other CPUs")


def _predictor(args: argparse.Namespace) -> Predictor:
    from stgcn.inference.predict import Predictor

    return Predictor.from_checkpoint(args.checkpoint, device=args.device, min_frames=args.min_frames,
                                     short=args.short, precision=args.precision)


def _window(args: argparse.Namespace) -> int | None:
    return None if args.window in (None, "auto") else args.window


def _format_topk(pred: dict) -> str:
    """``label score, ...`` with every label escaped for the terminal (a class name comes from a file)."""
    return ", ".join(f"{terminal_safe(t['label'])} {t['score']:.3f}" for t in pred["topk"])


def add_predict_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify keypoint files with a trained model",
                       description="Top-k classes of each input clip, with the checkpoint's preprocessing. "
                                   "Inputs: .npy arrays (T, V, C), (T, M, V, C) or (N, C, T, V, M), or any "
                                   "single-clip file the data layer reads. With --window: one prediction per "
                                   "sliding window and a label per frame.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("inputs", type=Path, nargs="+", metavar="INPUT", help="keypoint files")
    p.add_argument("--layout", default=None, help="layout of inputs that do not name one (default: the model's)")
    p.add_argument("--remap-joints", choices=REMAP_CHOICES, default="none",
                   help="by-name: reorder inputs with the model's joints in another order (default: refuse)")
    _add_window_args(p, sliding_by_default=False)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from stgcn.inference.predict import frame_labels, read_clips

    predictor = _predictor(args)
    results = []
    for path in args.inputs:
        clips = read_clips(path, args.layout or predictor.layout, remap=args.remap_joints,
                           target="--layout" if args.layout else "the model")
        if not clips:
            raise DataError(f"{path}: holds no clip (an empty batch)")
        for clip_input in clips:
            if not np.any(clip_input.keypoints):  # nothing was detected: a prediction would be noise
                raise DataError(f"{clip_input.name}: every keypoint is zero (no skeleton in any frame)")
            clip = predictor.input_from(clip_input, remap=args.remap_joints)
            item = {"input": clip_input.name, "frames": int(clip.shape[0]),
                    **predictor.predict(clip, args.topk).to_dict()}
            if args.window is not None:
                windows = predictor.sliding_window(clip, _window(args), args.stride, topk=args.topk)
                item["windows"] = [w.to_dict() for w in windows]
                item["frame_labels"] = [None if i is None else predictor.class_names[i]
                                        for i in frame_labels(windows, clip.shape[0], causal=False)]
            results.append(item)
    if args.json:  # always a list, one object per clip, however many inputs and clips
        print(json.dumps(results, indent=1))
        return 0
    for item in results:
        print(f"{terminal_safe(item['input'])} ({item['frames']} frames): {_format_topk(item)}")
        for w in item.get("windows", []):
            print(f"  frames {w['start']:>5}-{w['end'] - 1:<5} {_format_topk(w)}")
    return 0


def _frame_progress(video: Path, passes: int, desc: str) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A tqdm bar over a video's frames (``passes`` times), shown on a terminal; ``(callback, close)``."""
    try:
        from tqdm import tqdm

        from stgcn.inference.pose import video_info
    except ImportError:
        return None, lambda: None
    try:
        total = video_info(video).num_frames * passes or None
    except StgcnError:
        return None, lambda: None  # the command itself reports the unreadable video
    bar = tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True, disable=not sys.stderr.isatty())
    return (lambda _i: bar.update(1)), bar.close


def add_video_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.inference.pose import POSE_BACKENDS

    p = sub.add_parser("video", help="video -> MediaPipe pose -> action (annotated video and/or JSON)",
                       description="Run MediaPipe Pose on a video, classify the skeletons with a checkpoint "
                                   "(layout openpose-18, coco-17 or mediapipe-pose-33) and write a video with "
                                   "the skeleton and the current label, and/or a JSON report. Needs the "
                                   "'video' extra.")
    p.add_argument("video", type=Path, help="input video")
    p.add_argument("--checkpoint", type=Path, required=True, help="stgcn checkpoint")
    p.add_argument("--out", type=Path, default=None, help="annotated .mp4 to write")
    p.add_argument("--json", type=Path, default=None, dest="json_out", help="JSON report to write")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2),
                   help="MediaPipe Pose model: 0 lite, 1 full (default; the only one shipped with mediapipe 0.10.14 "
                        "and stgcn), 2 heavy (0 and 2 are downloaded by MediaPipe: they fail offline)")
    p.add_argument("--backend", default="auto", choices=POSE_BACKENDS,
                   help="pose backend: mediapipe (legacy solutions.pose, mediapipe==0.10.14, Python <= 3.12), litert "
                        "(the same BlazePose models under LiteRT, every Python) or auto (default: litert when "
                        "installed, else mediapipe; --backend mediapipe gives the original demo's exact skeletons)")
    p.add_argument("--max-people", type=int, default=1,
                   help="people to track (default 1: MediaPipe's single-person tracking); 0: no limit. Each person "
                        "gets a track in the JSON report ('tracks'); the top-level prediction is the person seen "
                        "longest")
    p.add_argument("--save-keypoints", type=Path, default=None,
                   help="also write the skeletons (pixels, every track, with fps) to a keypoints .json/.npz")
    _add_window_args(p, sliding_by_default=True)
    p.set_defaults(func=cmd_video)


def cmd_video(args: argparse.Namespace) -> int:
    from stgcn.inference.video import annotate_video, write_json

    predictor = _predictor(args)
    progress, close = _frame_progress(args.video, 2 if args.out is not None else 1, "video")
    if args.max_people < 0:
        raise ConfigError(f"--max-people must be 0 (no limit) or more, got {args.max_people}")
    try:
        result = annotate_video(args.video, predictor, out=args.out, window=_window(args), stride=args.stride,
                                topk=args.topk, model_complexity=args.model_complexity, max_frames=args.max_frames,
                                on_frame=progress, backend=args.backend,
                                max_people=None if args.max_people == 0 else args.max_people,
                                save_keypoints=args.save_keypoints)
    finally:
        close()
    if args.json_out is not None:
        write_json(result.to_dict(predictor), args.json_out)
    pose = result.pose
    report = result.to_dict(predictor)
    print(f"{args.video}: {pose.num_frames} frames, a person in {report['frames_with_person']}")
    print(f"clip: {_format_topk(result.prediction.to_dict())}")
    for w in result.windows:
        print(f"  frames {w.start:>5}-{w.end - 1:<5} {terminal_safe(w.prediction.label)} {w.prediction.score:.3f}")
    if args.max_people != 1:
        for t in result.tracks:
            print(f"  track {t.id}: frames {t.first_frame}-{t.last_frame}, {terminal_safe(t.prediction.label)} "
                  f"{t.prediction.score:.3f}")
    for path in (args.out, args.json_out, args.save_keypoints):
        if path is not None:
            print(f"wrote {path}")
    return 0


def add_pose_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.inference.pose import POSE_BACKENDS, POSE_LAYOUTS

    p = sub.add_parser("pose", help="extract keypoints from a video with MediaPipe Pose",
                       description="Write a video's skeletons (pixel coordinates and scores) to a keypoints "
                                   "JSON/NPZ clip that `stgcn predict`, `stgcn render` and `stgcn prepare "
                                   "keypoints` read. "
                                   "Needs the 'video' extra.")
    p.add_argument("video", type=Path, help="input video")
    p.add_argument("--out", type=Path, required=True, help="keypoints .json or .npz to write")
    p.add_argument("--layout", default="openpose-18", choices=POSE_LAYOUTS, help="joint layout (default openpose-18)")
    p.add_argument("--depth", action="store_true", help="also store MediaPipe's relative depth z")
    p.add_argument("--normalize", action="store_true",
                   help="store (x/W - 0.5, y/H - 0.5) as the original demo, instead of pixels")
    p.add_argument("--max-frames", type=int, default=None, help="read at most this many frames")
    p.add_argument("--model-complexity", type=int, default=1, choices=(0, 1, 2))
    p.add_argument("--backend", default="auto", choices=POSE_BACKENDS,
                   help="pose backend: mediapipe (legacy solutions.pose, mediapipe==0.10.14, Python <= 3.12), litert "
                        "(the same BlazePose models under LiteRT, every Python) or auto (default: litert when "
                        "installed, else mediapipe; --backend mediapipe gives the original demo's exact skeletons)")
    p.set_defaults(func=cmd_pose)


def cmd_pose(args: argparse.Namespace) -> int:
    from stgcn.inference.video import extract_keypoints_file

    progress, close = _frame_progress(args.video, 1, "pose")
    try:
        pose = extract_keypoints_file(args.video, args.out, layout=args.layout, depth=args.depth,
                                      normalize=args.normalize, model_complexity=args.model_complexity,
                                      max_frames=args.max_frames, on_frame=progress, backend=args.backend)
    finally:
        close()
    print(f"wrote {args.out}: {pose.num_frames} frames ({int(pose.detected.sum())} with a person), layout "
          f"{args.layout}, {pose.width}x{pose.height} at {pose.fps:.2f} fps")
    return 0


def add_render_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="animate a skeleton clip to GIF or MP4",
                       description="Draw a keypoint clip with its layout (3-D data projected on the camera "
                                   "plane) into an animated .gif or .mp4, optionally with a checkpoint's label "
                                   "per window. Needs the 'plot' extra.")
    p.add_argument("input", type=Path, help="keypoint file (as for `stgcn predict`)")
    p.add_argument("--out", type=Path, required=True, help=".gif or .mp4 to write")
    p.add_argument("--checkpoint", type=Path, default=None, help="label each frame with this model")
    p.add_argument("--layout", default=None, help="layout, when neither the file nor a checkpoint gives it")
    p.add_argument("--channels", default=None,
                   help="comma-separated channel names, e.g. x,y,score (score channels hide undetected joints)")
    p.add_argument("--fps", type=float, default=None, help="frames per second (default: the file's, else 30)")
    p.add_argument("--window", type=_window_arg, default="auto", help="sliding window with --checkpoint")
    p.add_argument("--stride", type=int, default=None, help="frames between windows (default window // 2)")
    p.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    from stgcn.inference.render import render_file

    if args.fps is not None:
        check_number(args.fps, "--fps", minimum=_MIN_FPS, maximum=_MAX_FPS)
    channels = None if args.channels is None else [c.strip() for c in args.channels.split(",") if c.strip()]
    summary = render_file(args.input, args.out, checkpoint=args.checkpoint, layout=args.layout,
                          channels=channels, fps=args.fps, window=_window(args), stride=args.stride)
    label = f", clip: {_format_topk(summary['prediction'])}" if summary["prediction"] else ""
    print(f"wrote {args.out}: {summary['frames']} frames, layout {summary['layout']}{label}")
    return 0


def add_plot_graph_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot-graph", help="draw a checkpoint's learned edge importance per block",
                       description="Draw the learned edge-importance mask of every block on the skeleton "
                                   "(.png/.pdf/.svg). Needs the 'plot' extra.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("--out", type=Path, required=True, help="picture to write")
    p.set_defaults(func=cmd_plot_graph)


def cmd_plot_graph(args: argparse.Namespace) -> int:
    from stgcn.engine.checkpoint import load_checkpoint
    from stgcn.inference.render import plot_edge_importance

    ck = load_checkpoint(args.checkpoint)
    plot_edge_importance(ck.model, args.out, title=f"{args.checkpoint.name}: learned edge importance per block")
    print(f"wrote {args.out}")
    return 0


def add_export_parser(sub: argparse._SubParsersAction) -> None:
    from stgcn.inference.export import EXPORT_FORMATS

    p = sub.add_parser("export", help="export a checkpoint to ONNX or TorchScript (verified)",
                       description="Write the model with dynamic batch, frames and persons, then run the file "
                                   "against the eager model on random inputs; fails unless they agree within "
                                   "--atol. ONNX needs the 'onnx' extra.")
    p.add_argument("checkpoint", type=Path, help="stgcn checkpoint")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
    p.add_argument("--out", type=Path, required=True, help="file to write")
    p.add_argument("--no-fold", action="store_true", help="keep BatchNorm layers unfolded")
    p.add_argument("--atol", type=float, default=1e-4, help="allowed max |exported - eager| (default 1e-4)")
    p.add_argument("--frames", type=int, default=64, help="frames T of the example input (default 64)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from stgcn.inference.export import export_checkpoint

    r = export_checkpoint(args.checkpoint, args.out, args.fmt, fold=not args.no_fold, atol=args.atol,
                          frames=args.frames, opset=args.opset)
    print(f"wrote {r.path} ({r.format}, {r.folded_batchnorms} BatchNorms folded): max |exported - eager| = "
          f"{r.max_abs_diff:.2e} <= {args.atol:g} on inputs {', '.join(str(s) for s in r.checked_shapes)}")
    return 0
