"""Live video sources without OpenCV: the imageio-ffmpeg fallback of :class:`stgcn.inference.sources.VideoSource`."""

from __future__ import annotations

import numpy as np
import pytest

from stgcn.errors import DataError
from stgcn.inference import sources
from stgcn.inference.sources import VideoSource


@pytest.fixture
def no_cv2(monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    monkeypatch.setattr(sources, "_cv2_or_none", lambda: None)


def _write_video(path, frames: int = 12, size: tuple[int, int] = (64, 48), fps: float = 25.0) -> np.ndarray:
    import imageio_ffmpeg

    rng = np.random.default_rng(0)
    # flat colour blocks survive H.264 well enough to compare the decoded frames
    blocks = rng.integers(0, 255, (frames, size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    video = blocks.repeat(16, axis=1).repeat(16, axis=2)
    writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", pix_fmt_out="yuv444p",
                                         output_params=["-qp", "0"], macro_block_size=16)
    writer.send(None)
    for f in video:
        writer.send(np.ascontiguousarray(f))
    writer.close()
    return video


def test_file_through_imageio_ffmpeg(no_cv2, tmp_path):
    path = tmp_path / "clip.mp4"
    video = _write_video(path)
    with VideoSource(str(path), max_frames=10) as source:
        assert source._cap is None and source.fps == pytest.approx(25.0) and source.size == (64, 48)
        frames = list(source)
    assert [f.index for f in frames] == list(range(10))
    assert frames[3].time == pytest.approx(3 / 25) and frames[0].image_size == (64, 48)
    assert frames[0].image.shape == (48, 64, 3) and frames[0].image.dtype == np.uint8
    # lossless H.264 (yuv444p, qp 0): only the RGB <-> YUV rounding
    assert np.abs(frames[5].image.astype(int) - video[5]).max() <= 3


def test_unreachable_url_is_one_line(no_cv2):
    with pytest.raises(DataError) as info:
        VideoSource("rtsp://127.0.0.1:9/none", reconnect=0)
    message = str(info.value)
    assert message.startswith("cannot open stream rtsp://127.0.0.1:9/none: ") and "\n" not in message
    assert "Connection refused" in message or "meta" in message


def test_prefetch_reads_ahead_in_order_and_passes_errors():
    from stgcn.inference.sources import Prefetch

    with Prefetch(range(50), depth=3) as frames:
        assert list(frames) == list(range(50))

    def failing():
        yield 1
        raise DataError("stream broke")

    got = []
    with pytest.raises(DataError, match="stream broke"), Prefetch(failing()) as frames:
        for f in frames:
            got.append(f)
    assert got == [1]


def test_prefetch_close_stops_an_endless_source():
    import itertools
    import threading

    from stgcn.inference.sources import Prefetch

    prefetch = Prefetch(itertools.count(), depth=2)
    it = iter(prefetch)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    prefetch.close()
    assert not prefetch._thread.is_alive()
    assert "stgcn-decode" not in {t.name for t in threading.enumerate()}
