"""One reader module per source format, and the list of the formats ``stgcn prepare`` converts.

Each reader module declares its format in one :class:`~stgcn.data.readers.base.DatasetFormat` named
``FORMAT`` (name, help, SRC help, options and plan function). :data:`FORMATS` lists them explicitly, in the
order ``stgcn prepare --help`` shows them: adding a format is one reader module and one entry here.
"""

from __future__ import annotations

from stgcn.data.readers import (
    keypoints_folder,
    kinetics_json,
    msr_action3d,
    ntu,
    nw_ucla,
    pyskl,
    stgcn_npy,
    utkinect,
)
from stgcn.data.readers.base import DatasetFormat, ReaderOption

__all__ = ["FORMATS", "DatasetFormat", "ReaderOption"]

FORMATS: tuple[DatasetFormat, ...] = (
    nw_ucla.FORMAT,
    msr_action3d.FORMAT,
    utkinect.FORMAT,
    ntu.FORMAT,
    kinetics_json.FORMAT,
    stgcn_npy.FORMAT,
    pyskl.FORMAT,
    keypoints_folder.FORMAT,
)
