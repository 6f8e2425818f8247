"""Live sources: a camera, a stream URL, a video file played as live, or keypoint frames as JSON lines, all
giving :class:`Frame` objects with timestamps.

:func:`open_source` picks the source from its spec:

* ``"0"``, ``"1"``, ...: a camera index (OpenCV ``VideoCapture``);
* ``rtsp://``, ``http(s)://``, ``udp://``, ...: a stream URL, through OpenCV's FFmpeg backend, else imageio-ffmpeg;
* a ``.json``/``.jsonl`` file or ``-`` (stdin): keypoint frames, one JSON value per line, in any format of
  :func:`stgcn.inference.keypoint_formats.parse_frame` (stgcn, OpenPose, MMPose/RTMPose, YOLO-pose);
* any other path: a video file (``realtime=True`` plays it at its frame rate, as a camera would deliver it).

A camera or stream that cannot be opened raises :class:`~stgcn.errors.DataError` (one line). A camera or
stream that stops delivering frames mid-way is logged and reopened (``reconnect`` times); a bad keypoint line is
logged and skipped. Frame times are seconds since the source started: ``index / fps`` for files, the wall clock
for cameras and streams, the JSON's ``time`` (else ``index / fps``) for keypoints. :class:`Prefetch` reads a
source's frames ahead in a thread (the live loop decodes while it runs the pose models).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from stgcn.errors import DataError, StgcnError
from stgcn.inference.keypoint_formats import parse_frame
from stgcn.utils.files import parse_json

__all__ = ["Frame", "open_source", "VideoSource", "KeypointSource", "source_kind", "Prefetch"]

logger = logging.getLogger(__name__)

_STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


@dataclass
class Frame:
    """One frame of a live source.

    Attributes:
        index: Frame number from 0 (counts every frame delivered).
        time: Seconds since the source started (see the module docstring).
        wall: ``time.perf_counter()`` when the frame was read (for latency figures).
        image: (H, W, 3) uint8 RGB, or ``None`` for keypoint sources.
        people: (P, J, 3) ``x, y, score`` pixels from a keypoint source, else ``None``.
        image_size: ``(W, H)`` when known.
    """

    index: int
    time: float
    wall: float
    image: np.ndarray | None = None
    people: np.ndarray | None = None
    image_size: tuple[float, float] | None = None


def source_kind(spec: str) -> str:
    """``camera``, ``stream``, ``keypoints`` or ``file`` for a source spec (see the module docstring)."""
    if spec.isdigit():
        return "camera"
    if spec.lower().startswith(_STREAM_SCHEMES):
        return "stream"
    if spec == "-" or spec.lower().endswith((".json", ".jsonl", ".ndjson")):
        return "keypoints"
    return "file"


class VideoSource:
    """Frames from a camera, a stream URL or a video file (see the module docstring).

    Args:
        spec: Camera index (as text or int), URL or file path.
        realtime: Deliver a file's frames at its frame rate (sleeping as needed), as a camera would.
        max_frames: Stop after this many frames.
        reconnect: How often a camera/stream that stops is reopened before the source ends.
        reconnect_delay: Seconds between reopen attempts.
    """

    def __init__(self, spec: str | int, *, realtime: bool = False, max_frames: int | None = None,
                 reconnect: int = 3, reconnect_delay: float = 1.0) -> None:
        self.spec = str(spec)
        self.kind = source_kind(self.spec)
        if self.kind == "keypoints":
            raise DataError(f"{self.spec}: a keypoints file, not a video; use KeypointSource")
        self.realtime = realtime
        self.max_frames = max_frames
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.gaps = 0
        if self.kind == "file" and not Path(self.spec).is_file():
            raise DataError(f"{self.spec}: no such video file")
        self._cv2 = _cv2_or_none()
        self._cap: Any = None
        self._ffmpeg: Iterator[Any] | None = None
        self.fps = 30.0
        self.size: tuple[int, int] | None = None
        self._open()

    def _what(self) -> str:
        return {"camera": f"camera {self.spec}", "stream": f"stream {self.spec}"}.get(self.kind, self.spec)

    def _open(self) -> None:
        if self._cv2 is not None:
            cv2 = self._cv2
            cap = cv2.VideoCapture(int(self.spec) if self.kind == "camera" else self.spec)
            if not cap.isOpened():
                cap.release()
                raise DataError(f"cannot open {self._what()} (no such device, unreachable URL or unreadable format)")
            self._cap = cap
            self.fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
            self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
            return
        if self.kind == "camera":
            raise StgcnError("camera input needs OpenCV: pip install 'stgcn[video]'")
        try:
            import imageio_ffmpeg
        except ImportError:
            raise StgcnError("video input needs OpenCV or imageio-ffmpeg: pip install 'stgcn[video]'") from None
        try:
            gen = imageio_ffmpeg.read_frames(self.spec)
            meta = next(gen)
        except (OSError, RuntimeError, StopIteration) as e:
            raise DataError(f"cannot open {self._what()}: {_ffmpeg_reason(e)}") from None
        self._ffmpeg = gen
        self.fps = float(meta.get("fps") or 30.0)
        self.size = tuple(int(s) for s in meta["size"])  # type: ignore[assignment]

    def _read(self) -> np.ndarray | None:
        if self._cap is not None:
            ok, frame = self._cap.read()
            return self._cv2.cvtColor(frame, self._cv2.COLOR_BGR2RGB) if ok else None
        try:
            raw = next(self._ffmpeg)  # type: ignore[arg-type]
        except (StopIteration, RuntimeError, OSError):
            return None
        w, h = self.size  # type: ignore[misc]
        return np.frombuffer(raw, np.uint8).reshape(h, w, 3)

    def _reopen(self, index: int) -> bool:
        """A camera/stream stopped: log the gap and try to reopen it; whether it came back."""
        self.gaps += 1
        for attempt in range(1, self.reconnect + 1):
            logger.warning("%s: no frame after frame %d; reopening (attempt %d of %d)", self._what(), index,
                           attempt, self.reconnect)
            self.close()
            time.sleep(self.reconnect_delay)
            try:
                self._open()
                return True
            except DataError:
                continue
        logger.warning("%s: gave up after %d attempts", self._what(), self.reconnect)
        return False

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        index = 0
        live = self.kind in ("camera", "stream")
        while self.max_frames is None or index < self.max_frames:
            image = self._read()
            if image is None:
                if live and self._reopen(index):
                    continue
                break
            now = time.perf_counter()
            t = now - start if live else index / self.fps
            if self.realtime and not live:
                delay = start + t - now
                if delay > 0:
                    time.sleep(delay)
                now = time.perf_counter()
            yield Frame(index, t, now, image=image, image_size=(image.shape[1], image.shape[0]))
            index += 1
        if index == 0 and self.kind == "file":
            raise DataError(f"{self.spec}: no frame could be decoded")

    def close(self) -> None:
        """Release the device, stream or file."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        if self._ffmpeg is not None:
            self._ffmpeg.close()  # type: ignore[attr-defined]
            self._ffmpeg = None

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeypointSource:
    """Keypoint frames, one JSON value per line (see :func:`stgcn.inference.keypoint_formats.parse_frame`).

    Args:
        stream: A text stream (``sys.stdin``) or a path.
        fps: Frame rate for frames whose JSON has no ``time``.
        image_size: ``(W, H)`` for frames whose JSON has no ``image_size``.
        max_frames: Stop after this many frames.
    """

    def __init__(self, stream: IO[str] | str | Path, *, fps: float = 30.0,
                 image_size: tuple[float, float] | None = None, max_frames: int | None = None) -> None:
        if isinstance(stream, str | Path):
            if str(stream) == "-":
                self._file, self._owned = sys.stdin, False
            else:
                path = Path(stream)
                if not path.is_file():
                    raise DataError(f"{path}: no such keypoints file")
                # a bad byte spoils its line only (that line is then skipped as invalid JSON)
                self._file, self._owned = path.open(encoding="utf-8", errors="replace"), True
            self.spec = str(stream)
        else:
            self._file, self._owned, self.spec = stream, False, "<stream>"
        self.kind = "keypoints"
        self.fps = float(fps)
        self.image_size = image_size
        self.max_frames = max_frames
        self.skipped = 0

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for line_no, line in enumerate(self._file, 1):
            if self.max_frames is not None and index >= self.max_frames:
                break
            line = line.strip()
            if not line:
                continue
            try:
                where = f"{self.spec} line {line_no}"
                parsed = parse_frame(parse_json(line, where), where=where)  # nesting bounded: no RecursionError
            except DataError as e:
                self.skipped += 1
                logger.warning("skipped %s line %d: %s", self.spec, line_no, str(e).splitlines()[0])
                continue
            t = parsed.time if parsed.time is not None else index / self.fps
            yield Frame(index, t, time.perf_counter(), people=parsed.people,
                        image_size=parsed.image_size or self.image_size)
            index += 1

    def close(self) -> None:
        """Close the file (not stdin)."""
        if self._owned:
            self._file.close()

    def __enter__(self) -> KeypointSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(spec: str, *, realtime: bool = False, max_frames: int | None = None, fps: float = 30.0,
                image_size: tuple[float, float] | None = None, reconnect: int = 3) -> VideoSource | KeypointSource:
    """The source a spec names (see the module docstring).

    Raises:
        DataError: a missing file, or a camera/stream that cannot be opened (one line).
    """
    if source_kind(spec) == "keypoints":
        return KeypointSource(spec, fps=fps, image_size=image_size, max_frames=max_frames)
    return VideoSource(spec, realtime=realtime, max_frames=max_frames, reconnect=reconnect)


_END = object()


class Prefetch:
    """Read a source's frames in a background thread, ``depth`` frames ahead, so that decoding (OpenCV and FFmpeg
    release the GIL) overlaps the pose stage. Iterate it like the source; errors of the source are raised where
    the frame would have been; :meth:`close` (also at the end of a ``with`` block) stops the thread, after which
    the source may be closed.

    Args:
        source: Any iterable of frames (a :class:`VideoSource`).
        depth: Frames read ahead.

    Attributes:
        wall: Seconds the thread spent reading frames (not waiting for room in the queue).
        cpu: CPU seconds of the thread.
    """

    def __init__(self, source: Any, depth: int = 2) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self._queue: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="stgcn-decode", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[Any, BaseException | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Any) -> None:
        it = iter(source)
        try:
            while True:
                start = time.perf_counter()
                try:
                    frame = next(it)
                except StopIteration:
                    break
                finally:
                    self.wall += time.perf_counter() - start
                    self.cpu = time.thread_time()
                if not self._put((frame, None)):
                    return
            self._put((_END, None))
        except BaseException as e:  # handed to the reading thread
            self._put((_END, e))

    def __iter__(self) -> Iterator[Any]:
        while True:
            item, error = self._queue.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item

    def close(self) -> None:
        """Stop reading ahead and wait for the thread (at most one frame's read)."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Prefetch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ffmpeg_reason(error: BaseException) -> str:
    """One line from an imageio-ffmpeg error: FFmpeg's last message (e.g. ``Connection refused``) when the error
    carries FFmpeg's output, else the error's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return "no frames"
    if "=== stderr ===" in lines:
        return f"{lines[0]} ({lines[-1]})" if lines[-1] != "=== stderr ===" else lines[0]
    return lines[0]


def _cv2_or_none() -> Any:
    try:
        import cv2
    except ImportError:
        return None
    return cv2
