"""Bounds on every size that comes from a file or an option, in one place.

They keep a corrupted or hostile input (a 6 kB file declaring a billion classes, a FIFO, a symlink to
``/dev/zero``) from exhausting memory or time; no real skeleton dataset or model comes near them. A value
beyond one is a one-line :class:`~stgcn.errors.ConfigError` or :class:`~stgcn.errors.DataError` naming it.
"""

from __future__ import annotations

from stgcn.errors import ConfigError

__all__ = ["MAX_FILE_BYTES", "MAX_TEXT_BYTES", "MAX_NESTING", "MAX_CLASSES", "MAX_CHANNELS", "MAX_BLOCKS",
           "MAX_HOP", "MAX_JOINTS", "MAX_FRAMES", "MAX_PERSONS", "MAX_CLIPS", "MAX_WORKERS", "MAX_PICKLE_ELEMENTS",
           "check_max"]

MAX_FILE_BYTES = 2 * 1024**3       # one data file (a clip, a pickle, a checkpoint read whole)
MAX_TEXT_BYTES = 64 * 1024**2      # one text file of settings: a config, a layout, class names
MAX_NESTING = 100                  # depth of nested JSON/YAML lists and mappings
MAX_CLASSES = 100_000              # classes of a model or a dataset
MAX_CHANNELS = 16_384              # channels of one block, input channels
MAX_BLOCKS = 1_000                 # blocks of a model
MAX_HOP = 32                       # graph max_hop / dilation
MAX_JOINTS = 10_000                # joints of a layout
MAX_FRAMES = 1_000_000             # frames of one clip (NTU's longest has 300; 1 h at 60 fps is 216,000)
MAX_PERSONS = 1024                 # persons (bodies) of one clip
MAX_CLIPS = 10_000                 # clips sampled from one input (test-time augmentation)
MAX_WORKERS = 1024                 # worker processes of a data loader or a prepare pool
MAX_PICKLE_ELEMENTS = 50_000_000   # list/dict/tuple elements built while unpickling, shared references counted


def check_max(value: int, name: str, maximum: int, error: type[Exception] = ConfigError) -> int:
    """``value`` when it is at most ``maximum``, else one line naming ``name`` and the limit."""
    if value > maximum:
        raise error(f"{name} must be <= {maximum} (a limit of stgcn), got {value!r}")
    return value
