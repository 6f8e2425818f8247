"""The live loop: a source's frames -> pose (or the source's own keypoints) -> :class:`LivePipeline` -> events,
optionally drawn into an annotated video or a window.

:func:`run_live` runs until the source ends or Ctrl-C; either way every open track is closed and its last
events are emitted before it returns (Ctrl-C is logged, not raised). Frames without a person are simply frames
with no people (the tracks age); a camera or stream that drops is reopened by the source and logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.graph.layouts import Layout
from stgcn.inference.keypoint_formats import convert_layout
from stgcn.inference.live import LivePipeline, StageClock, StageTimes
from stgcn.inference.sources import Frame, Prefetch

__all__ = ["run_live", "frame_people", "draw_people"]

logger = logging.getLogger(__name__)


def frame_people(frame: Frame, estimator: Any, layout: Layout) -> np.ndarray:
    """The people of a frame in ``layout``, pixels: a keypoint source's own (``x, y, score``), else the pose
    estimator's landmarks mapped to the layout (``x, y, z, score``).

    Shape:
        Returns (P, V, 3 or 4).
    """
    if frame.people is not None:
        if frame.people.size == 0:
            return np.zeros((0, layout.num_joints, 3), np.float32)
        return convert_layout(frame.people, layout)
    from stgcn.inference.pose import landmarks_to_layout

    if estimator is None:
        raise ValueError("a video frame needs a pose estimator")
    landmarks = estimator.process(frame.image)
    if len(landmarks) == 0:
        return np.zeros((0, layout.num_joints, 4), np.float32)
    return landmarks_to_layout(landmarks, layout)


def draw_people(image: np.ndarray, people: np.ndarray, ids: list[int], labels: dict[int, str], layout: Layout,
                lines: list[str] | None = None) -> np.ndarray:
    """Draw each person's skeleton with ``#id label`` above it, and text lines in the corner.

    Shape:
        image: (H, W, 3) uint8 RGB; people: (P, V, C) pixels with the score last.
    """
    from stgcn.inference.pose import _import_cv2
    from stgcn.inference.tracker import boxes_from_keypoints
    from stgcn.inference.video import _put_text, draw_frame

    cv2 = _import_cv2()
    kp = people[..., [0, 1, -1]] if len(people) else np.zeros((0, layout.num_joints, 3), np.float32)
    img = draw_frame(image, kp, layout, lines or [])
    unit = max(1, round(min(img.shape[:2]) / 240))
    for box, tid in zip(boxes_from_keypoints(kp, 0.1) if len(kp) else [], ids, strict=False):
        x0, y0 = int(box[0]), max(int(box[1]) - 4 * unit, 12 * unit)
        _put_text(cv2, img, f"#{tid} {labels.get(tid, '...')}", (x0, y0), 0.4 * unit, (255, 255, 0), unit)
    return img


def run_live(source: Any, pipeline: LivePipeline, *, emit: Callable[[dict[str, Any]], None],
             estimator: Any = None, out: str | Path | None = None, show: bool = False) -> StageTimes:
    """Run a source through the pipeline until it ends or Ctrl-C.

    A video source's frames are decoded a few ahead in a thread (:class:`~stgcn.inference.sources.Prefetch`), so
    that decoding overlaps the pose stage; with ``LivePipeline(background=True)`` the model overlaps it too. The
    model's thread count is the caller's (``torch.set_num_threads``; :func:`stgcn.inference.background.split_threads`
    gives the default share), the pose models' the estimator's.

    Args:
        source: A :class:`~stgcn.inference.sources.VideoSource` or
            :class:`~stgcn.inference.sources.KeypointSource`.
        pipeline: The pipeline (its predictor's layout decides the joints).
        emit: Called with every event, in order.
        estimator: Pose estimator for video frames (:func:`stgcn.inference.estimators.open_estimator`).
        out: Annotated ``.mp4`` to write (video sources).
        show: Show the annotated frames in a window (OpenCV ``imshow``; ``q`` or Esc stops).

    Returns:
        Seconds per stage (decode, pose, tracking, ST-GCN; wall and thread CPU), the loop's wall time (warm-up
        excluded) and the frame count.
    """
    layout = pipeline.predictor.layout
    times = pipeline.times
    writer = None
    labels: dict[int, str] = {}
    gap_start: int | None = None
    prefetch = None
    start = 0.0
    try:
        pipeline.warm_up()
        start = time.perf_counter()
        if getattr(source, "kind", "keypoints") != "keypoints":  # decode the next frames during this one's pose
            prefetch = Prefetch(source)
        it = iter(prefetch if prefetch is not None else source)
        clock = StageClock()
        while True:
            try:
                frame = next(it)
            except StopIteration:
                break
            wall_s, cpu_s = clock.lap()
            if prefetch is None:
                times.decode += wall_s
                times.decode_cpu += cpu_s
            else:
                times.decode_wait += wall_s
            people = frame_people(frame, estimator, layout)
            wall_s, cpu_s = clock.lap()
            times.pose += wall_s
            times.pose_cpu += cpu_s
            if len(people) == 0 and gap_start is None:
                gap_start = frame.index
            elif len(people) and gap_start is not None:
                logger.info("frames %d-%d: no person in view", gap_start, frame.index - 1)
                gap_start = None
            events = pipeline.step(frame.index, frame.time, people, image_size=frame.image_size, wall=frame.wall)
            times.frames += 1
            for event in events:
                if event["event"] == "prediction":
                    labels[event["track"]] = f"{event['label']} {event['score']:.2f}"
                emit(event)
            if frame.image is not None and (out is not None or show):
                img = draw_people(frame.image, people, pipeline.last_ids, labels, layout,
                                  [f"frame {frame.index}  t={frame.time:.2f}s  people {len(people)}"])
                if out is not None:
                    if writer is None:
                        from stgcn.inference.media import VideoWriter

                        writer = VideoWriter(out, getattr(source, "fps", 30.0))
                    writer.write(img)
                if show and _show(img):
                    break
            clock.lap()  # tracking and the model are timed by the pipeline, drawing by nobody
    except KeyboardInterrupt:
        logger.info("interrupted at frame %d; closing the tracks", times.frames)
    finally:
        if prefetch is not None:
            prefetch.close()
            times.decode += prefetch.wall
            times.decode_cpu += prefetch.cpu
        for event in pipeline.close():
            emit(event)
        if start:
            times.wall += time.perf_counter() - start
        if writer is not None:
            writer.close()
            logger.info("wrote %s (%d frames)", out, writer.frames)
        source.close()
        if estimator is not None:
            estimator.close()
    return times


def _show(img: np.ndarray) -> bool:
    """Show a frame; whether the user asked to stop (q or Esc)."""
    from stgcn.inference.pose import _import_cv2

    cv2 = _import_cv2()
    cv2.imshow("stgcn live", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return (cv2.waitKey(1) & 0xFF) in (ord("q"), 27)
