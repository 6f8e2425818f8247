"""Output files of pictures and animations: figures saved atomically, an MP4 writer fed one frame at a time,
GIF/MP4 animations from RGB frames.

Needs the ``plot`` extra (matplotlib; Pillow for GIF; imageio-ffmpeg for MP4). Figures are drawn with
matplotlib's object API and the Agg canvas, so no global pyplot state is touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.errors import ConfigError, DataError, StgcnError
from stgcn.utils.atomic import atomic_path, temp_path_beside

__all__ = ["VideoWriter", "write_animation", "ANIMATION_SUFFIXES", "IMAGE_SUFFIXES"]

ANIMATION_SUFFIXES = (".gif", ".mp4")
IMAGE_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or a clear error naming the extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise StgcnError("plots need matplotlib, which the 'plot' extra installs: pip install 'stgcn[plot]'") from None
    return Figure, FigureCanvasAgg


def _check_suffix(out: Path, allowed: Sequence[str], what: str) -> str:
    suffix = out.suffix.lower()
    if suffix not in allowed:
        raise ConfigError(f"{out}: {what} must end in {', '.join(allowed)}")
    return suffix


def _save_figure(fig: Any, out: Path) -> None:
    _check_suffix(out, IMAGE_SUFFIXES, "a picture")
    _, canvas_cls = _matplotlib()
    canvas_cls(fig)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=out.suffix.lower()[1:].replace("jpg", "jpeg"), dpi=fig.dpi)


class VideoWriter:
    """MP4 (H.264, yuv420p) writer over imageio-ffmpeg's bundled FFmpeg; frames go in one at a time.

    Writes to a temporary file that replaces ``path`` on :meth:`close` (use as a context manager).

    Shape:
        frame: (H, W, 3) uint8 RGB; H and W even (odd sizes are padded by one pixel).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        try:
            import imageio_ffmpeg
        except ImportError:
            raise StgcnError("writing MP4 needs imageio-ffmpeg, which the 'plot' and 'video' extras install: "
                             "pip install 'stgcn[plot]'") from None
        self._ffmpeg = imageio_ffmpeg
        self.path = Path(path)
        self.fps = float(fps)
        self._tmp = temp_path_beside(self.path.with_suffix(".mp4"))
        self._gen: Any = None
        self._size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""
        frame = np.asarray(frame, dtype=np.uint8)[..., :3]
        h, w = frame.shape[:2]
        if h % 2 or w % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            h, w = frame.shape[:2]
        if self._gen is None:
            self._size = (w, h)
            self._gen = self._ffmpeg.write_frames(str(self._tmp), (w, h), fps=self.fps, codec="libx264",
                                                  pix_fmt_out="yuv420p", macro_block_size=1)
            self._gen.send(None)
        elif (w, h) != self._size:
            raise DataError(f"{self.path}: frame {self.frames} is {w}x{h}; earlier frames are "
                            f"{self._size[0]}x{self._size[1]}")
        self._gen.send(np.ascontiguousarray(frame))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._gen is not None:
            self._gen.close()
            self._gen = None
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise DataError(f"{self.path}: no frames to write")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop and remove the temporary file; ``path`` is left untouched."""
        if self._gen is not None:
            with contextlib.suppress(Exception):
                self._gen.close()
            self._gen = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_animation(frames: Iterable[np.ndarray], out: str | Path, fps: float) -> int:
    """Write RGB frames to a GIF (Pillow) or an MP4 (imageio-ffmpeg), atomically.

    Returns:
        The number of frames written.

    Shape:
        frames: each (H, W, 3) uint8.
    """
    out = Path(out)
    suffix = _check_suffix(out, ANIMATION_SUFFIXES, "an animation")
    if suffix == ".mp4":
        with VideoWriter(out, fps) as writer:
            for frame in frames:
                writer.write(frame)
        return writer.frames
    try:
        from PIL import Image
    except ImportError:
        raise StgcnError("writing GIF needs Pillow, which the 'plot' extra installs: "
                         "pip install 'stgcn[plot]'") from None
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)[..., :3]) for f in frames]
    if not images:
        raise DataError(f"{out}: no frames to write")
    # a shared adaptive palette keeps colours steady across frames
    palette = images[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    with atomic_path(out) as tmp:
        frames_p[0].save(tmp, format="GIF", save_all=True, append_images=frames_p[1:],
                         duration=max(20, round(1000 / fps)), loop=0, optimize=False)
    return len(images)
