"""NTU RGB+D 60 / 120: the raw ``.skeleton`` files of the Kinect v2 SDK.

File name ``SsssCcccPpppRrrrAaaa``: setup, camera, performer, replication, action (1-based).

Format (text, whitespace separated)::

    num_frames
    per frame:  num_bodies
      per body: bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence handRightState
                isRestricted leanX leanY trackingState                                   (10 values)
                num_joints (25)
                per joint: x y z depthX depthY colorX colorY orientationW orientationX orientationY
                           orientationZ trackingState                                    (12 values)

Body selection (documented rule): bodies are tracked by their ``bodyID``. Each track is scored by its
motion energy: the sum over x, y, z of the standard deviation of all its joint positions (over its joints
and the frames it is present in), the rule of the 2s-AGCN / MS-G3D NTU preprocessing applied to tracks.
Tracks are placed in that order into ``max_bodies`` slots: a track goes into the first slot whose frames it
does not overlap (so a body that the SDK lost and found again under a new ID continues in the same slot); a
track that fits in no slot is dropped. Slot 0 holds the most energetic body. Frames without any body are kept
as zero frames.

Protocols (Shahroudy et al., CVPR 2016; Liu et al., TPAMI 2019):

* NTU-60 (setups 1-17, actions 1-60): cross-subject ``xsub`` (20 training performers) and cross-view
  ``xview`` (cameras 2 and 3 train, camera 1 tests).
* NTU-120 (setups 1-32, actions 1-120): cross-subject ``xsub`` (53 training performers) and cross-setup
  ``xset`` (even setups train, odd setups test).

The published lists of samples with missing skeletons (302 in NTU-60, 535 in NTU-120, from the dataset
authors' repository shahroudy/NTURGB-D, ``Matlab/NTU_RGBD*_samples_with_missing_skeletons.txt``) ship with
the package (``ntu_missing_samples.txt``, one name per line); those samples are skipped and counted.
``missing_list`` replaces them with a file of names.
"""

from __future__ import annotations

import re
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from stgcn.data.readers.base import (
    MAX_FRAMES,
    MAX_PERSONS,
    ClipRecord,
    DatasetFormat,
    ReaderOption,
    Skipped,
    SourcePlan,
    check_keypoints,
    chunked,
    read_text,
)
from stgcn.errors import DataError
from stgcn.graph.layouts import get_layout
from stgcn.utils.checks import check_int

__all__ = [
    "NTU_CLASS_NAMES", "NTU60_XSUB_TRAIN_SUBJECTS", "NTU120_XSUB_TRAIN_SUBJECTS", "NTU60_MISSING_SAMPLES",
    "NTU120_MISSING_SAMPLES", "parse_ntu_name", "parse_ntu_skeleton", "select_bodies", "read_ntu_file",
    "ntu_splits", "plan_ntu", "FORMAT",
]

NTU_CLASS_NAMES: tuple[str, ...] = (
    "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
    "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing", "tear up paper",
    "wear jacket", "take off jacket", "wear a shoe", "take off a shoe", "wear on glasses", "take off glasses",
    "put on a hat/cap", "take off a hat/cap", "cheer up", "hand waving", "kicking something",
    "reach into pocket", "hopping (one foot jumping)", "jump up", "make a phone call/answer phone",
    "playing with phone/tablet", "typing on a keyboard", "pointing to something with finger", "taking a selfie",
    "check time (from watch)", "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
    "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering", "falling",
    "touch head (headache)", "touch chest (stomachache/heart pain)", "touch back (backache)",
    "touch neck (neckache)", "nausea or vomiting condition", "use a fan (with hand or paper)/feeling warm",
    "punching/slapping other person", "kicking other person", "pushing other person",
    "pat on back of other person", "point finger at the other person", "hugging other person",
    "giving something to other person", "touch other person's pocket", "handshaking",
    "walking towards each other", "walking apart from each other",
    # NTU RGB+D 120 additions (A061-A120)
    "put on headphone", "take off headphone", "shoot at the basket", "bounce ball", "tennis bat swing",
    "juggling table tennis balls", "hush (quite)", "flick hair", "thumb up", "thumb down", "make ok sign",
    "make victory sign", "staple book", "counting money", "cutting nails", "cutting paper (using scissors)",
    "snapping fingers", "open bottle", "sniff (smell)", "squat down", "toss a coin", "fold paper",
    "ball up paper", "play magic cube", "apply cream on face", "apply cream on hand back", "put on bag",
    "take off bag", "put something into a bag", "take something out of a bag", "open a box",
    "move heavy objects", "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms",
    "arm circles", "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
    "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
    "wield knife towards other person", "knock over other person (hit with body)",
    "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
    "cheers and drink", "carry something with other person", "take a photo of other person",
    "follow other person", "whisper in other person's ear", "exchange things with other person",
    "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
)

NTU60_XSUB_TRAIN_SUBJECTS = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_XSUB_TRAIN_SUBJECTS = frozenset((
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54,
    55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))

VARIANTS = ("ntu60", "ntu120")
MAX_BODIES_PER_FRAME = 64     # the Kinect v2 SDK tracks at most 6
_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_BODY_INFO = 10
_JOINT_VALUES = 12
_NUM_JOINTS = 25


def parse_ntu_name(name: str) -> dict[str, int]:
    """``"S001C002P003R002A013"`` -> setup 1, camera 2, performer 3, replication 2, action 13.

    Raises:
        DataError: not an NTU sample name.
    """
    m = _NAME.fullmatch(name)
    if m is None:
        raise DataError(f"{name}: not an NTU RGB+D sample name; expected SsssCcccPpppRrrrAaaa "
                        "(e.g. S001C002P003R002A013)")
    setup, camera, performer, replication, action = (int(g) for g in m.groups())
    return {"setup": setup, "camera": camera, "performer": performer, "replication": replication,
            "action": action}


def parse_ntu_skeleton(text: str, where: str) -> tuple[int, list[list[tuple[str, np.ndarray]]]]:
    """Parse the text of a ``.skeleton`` file.

    Returns:
        ``(num_frames, frames)``: per frame a list of ``(body_id, joints)`` with joints (25, 12) float64.

    Raises:
        DataError: truncated, wrong counts or non-numeric values (one line naming the file).
    """
    tokens = text.split()
    n = len(tokens)
    pos = 0

    def integer(what: str, low: int, high: int) -> int:
        nonlocal pos
        if pos >= n:
            raise DataError(f"{where}: truncated: file ends where {what} was expected")
        tok = tokens[pos]
        try:
            value = int(tok)
        except ValueError:
            raise DataError(f"{where}: {what} must be an integer, got {tok[:20]!r}") from None
        if not low <= value <= high:
            raise DataError(f"{where}: {what} {value} is outside [{low}, {high}]")
        pos += 1
        return value

    num_frames = integer("the frame count", 0, min(MAX_FRAMES, n))
    frames: list[list[tuple[str, np.ndarray]]] = []
    for f in range(num_frames):
        num_bodies = integer(f"the body count of frame {f}", 0, MAX_BODIES_PER_FRAME)
        bodies = []
        for b in range(num_bodies):
            if pos + _BODY_INFO > n:
                raise DataError(f"{where}: truncated in the body header of frame {f}, body {b}")
            body_id = tokens[pos]
            pos += _BODY_INFO
            joints = integer(f"the joint count of frame {f}, body {b}", 0, 10_000)
            if joints != _NUM_JOINTS:
                raise DataError(f"{where}: frame {f}, body {b} has {joints} joints; NTU RGB+D has {_NUM_JOINTS}")
            end = pos + _NUM_JOINTS * _JOINT_VALUES
            if end > n:
                raise DataError(f"{where}: truncated in the joints of frame {f}, body {b}")
            try:
                values = np.array(tokens[pos:end], dtype=np.float64).reshape(_NUM_JOINTS, _JOINT_VALUES)
            except ValueError:
                raise DataError(f"{where}: non-numeric joint value in frame {f}, body {b}") from None
            pos = end
            bodies.append((body_id, values))
        frames.append(bodies)
    if pos != n:
        raise DataError(f"{where}: {n - pos} unexpected values after the last frame (wrong counts?)")
    return num_frames, frames


def select_bodies(frames: list[list[tuple[str, np.ndarray]]], max_bodies: int) -> tuple[np.ndarray, int]:
    """Place bodies into ``max_bodies`` slots by the rule in the module docstring.

    Returns:
        ``(keypoints, num_tracks)``: keypoints (T, M, 25, 3) float32 with M the number of used slots
        (0 when no frame holds a body) and the number of distinct body IDs.
    """
    t = len(frames)
    tracks: dict[str, dict[int, np.ndarray]] = {}
    for f, bodies in enumerate(frames):
        for body_id, values in bodies:
            track = tracks.setdefault(body_id, {})
            if f not in track:  # a repeated ID within one frame keeps its first body
                track[f] = values[:, :3]
    if not tracks:
        return np.zeros((t, 0, _NUM_JOINTS, 3), dtype=np.float32), 0

    def energy(track: dict[int, np.ndarray]) -> float:
        xyz = np.stack(list(track.values()))                  # (frames, 25, 3)
        valid = xyz[np.abs(xyz).sum(axis=(1, 2)) != 0]
        return float(valid.reshape(-1, 3).std(axis=0).sum()) if len(valid) else 0.0

    order = sorted(tracks, key=lambda k: (-energy(tracks[k]), min(tracks[k])))
    slots: list[set[int]] = []
    out = np.zeros((t, max_bodies, _NUM_JOINTS, 3), dtype=np.float32)
    for body_id in order:
        frames_of = set(tracks[body_id])
        slot = next((s for s, used in enumerate(slots) if not used & frames_of), None)
        if slot is None:
            if len(slots) == max_bodies:
                continue
            slots.append(set())
            slot = len(slots) - 1
        slots[slot] |= frames_of
        for f, xyz in tracks[body_id].items():
            out[f, slot] = xyz
    return out[:, :len(slots)], len(tracks)


def read_ntu_file(path: str | Path, *, max_bodies: int = 2) -> tuple[np.ndarray, dict[str, Any]]:
    """Read one ``.skeleton`` file.

    Returns:
        ``(keypoints, meta)``: meta has the name fields (when the name is an NTU name), ``num_frames``,
        ``max_bodies_per_frame`` and ``num_tracks`` (distinct body IDs).

    Shape:
        keypoints: (T, M, 25, 3) float32, x y z in metres, M <= max_bodies the slots in use.

    Raises:
        DataError: malformed file, or a file without any body (a sample with missing skeletons).
    """
    path = Path(path)
    max_bodies = check_int(max_bodies, "max_bodies", minimum=1, maximum=MAX_PERSONS, error=DataError)
    num_frames, frames = parse_ntu_skeleton(read_text(path), str(path))
    if num_frames == 0:
        raise DataError(f"{path}: empty clip (0 frames)")
    with np.errstate(over="ignore", invalid="ignore"):   # out-of-range values become inf, refused below
        x, num_tracks = select_bodies(frames, max_bodies)
    if x.shape[1] == 0:
        raise DataError(f"{path}: no skeleton in any frame (a sample with missing skeletons)")
    check_keypoints(x, str(path), get_layout("ntu-rgb+d"), 3)
    meta: dict[str, Any] = {"name": path.stem, "num_frames": num_frames, "num_tracks": num_tracks,
                            "max_bodies_per_frame": max(len(b) for b in frames)}
    if _NAME.fullmatch(path.stem):
        meta.update(parse_ntu_name(path.stem))
    return x, meta


def ntu_splits(info: dict[str, int], variant: str) -> tuple[str, ...]:
    """Split names a sample belongs to under the variant's two benchmarks."""
    if variant == "ntu60":
        xsub = "xsub_train" if info["performer"] in NTU60_XSUB_TRAIN_SUBJECTS else "xsub_test"
        xview = "xview_train" if info["camera"] in NTU60_XVIEW_TRAIN_CAMERAS else "xview_test"
        return xsub, xview
    xsub = "xsub_train" if info["performer"] in NTU120_XSUB_TRAIN_SUBJECTS else "xsub_test"
    xset = "xset_train" if info["setup"] % 2 == 0 else "xset_test"
    return xsub, xset


def _work(paths: list[str], *, variant: str, max_bodies: int, missing: frozenset[str]) -> list[ClipRecord | Skipped]:
    out: list[ClipRecord | Skipped] = []
    for p in paths:
        name = Path(p).stem
        if name in missing:
            out.append(Skipped(name, "in the published list of samples with missing skeletons"))
            continue
        info = parse_ntu_name(name)
        try:
            x, _ = read_ntu_file(p, max_bodies=max_bodies)
        except DataError as e:
            if "no skeleton in any frame" in str(e):
                out.append(Skipped(name, "no skeleton in any frame"))
                continue
            raise
        out.append(ClipRecord(name, x, info["action"] - 1, ntu_splits(info, variant)))
    return out


def _read_missing_list(path: str | Path) -> frozenset[str]:
    return _parse_missing_list(read_text(path), str(path))


def _parse_missing_list(text: str, path: str) -> frozenset[str]:
    """Sample names, one per line (``.skeleton`` suffix, blank lines and ``#`` comments allowed)."""
    names = set()
    for i, line in enumerate(text.splitlines(), 1):
        name = line.strip().removesuffix(".skeleton")
        if not name or name.startswith("#"):
            continue
        if not _NAME.fullmatch(name):
            raise DataError(f"{path}: line {i}: {name[:40]!r} is not an NTU sample name (SsssCcccPpppRrrrAaaa)")
        names.add(name)
    return frozenset(names)


def plan_ntu(
    src: str | Path,
    *,
    variant: str = "ntu60",
    max_bodies: int = 2,
    missing_list: str | Path | None = None,
    chunk: int = 16,
) -> SourcePlan:
    """Plan the conversion of a folder of NTU ``.skeleton`` files.

    Args:
        src: Folder (searched recursively) of ``SsssCcccPpppRrrrAaaa.skeleton`` files.
        variant: ``ntu60`` (setups 1-17, actions 1-60; splits xsub/xview) or ``ntu120`` (all; xsub/xset).
        max_bodies: Bodies kept per clip (the store's M).
        missing_list: File of sample names to skip instead of the built-in published list.
        chunk: Files per work unit.
    """
    src = Path(src)
    if variant not in VARIANTS:
        raise DataError(f"NTU variant {variant!r} is not valid; valid variants are {', '.join(VARIANTS)}")
    max_bodies = check_int(max_bodies, "max_bodies", minimum=1, maximum=MAX_PERSONS, error=DataError)
    if not src.is_dir():
        raise DataError(f"{src}: not a directory; expected a folder of NTU .skeleton files")
    files = sorted((p for p in src.rglob("*.skeleton") if _NAME.fullmatch(p.stem)), key=lambda p: p.stem)
    num_classes = 60 if variant == "ntu60" else 120
    max_setup = 17 if variant == "ntu60" else 32
    inside = []
    for p in files:
        info = parse_ntu_name(p.stem)
        if info["action"] <= num_classes and info["setup"] <= max_setup:
            inside.append(p)
    outside = len(files) - len(inside)
    files = inside
    if not files:
        raise DataError(f"{src}: no NTU RGB+D {variant} .skeleton files (SsssCcccPpppRrrrAaaa.skeleton) found")
    seen: dict[str, Path] = {}
    for p in files:
        if p.stem in seen:
            raise DataError(f"{p}: sample {p.stem} appears twice (also {seen[p.stem]})")
        seen[p.stem] = p
    if missing_list is not None:
        missing = _read_missing_list(missing_list)
    else:
        missing = NTU60_MISSING_SAMPLES if variant == "ntu60" else NTU120_MISSING_SAMPLES
    benchmarks = ("xsub", "xview") if variant == "ntu60" else ("xsub", "xset")
    return SourcePlan(
        format="ntu",
        layout=get_layout("ntu-rgb+d"),
        channels=["x", "y", "z"],
        class_names=list(NTU_CLASS_NAMES[:num_classes]),
        num_persons=max_bodies,
        units=chunked([str(p) for p in files], chunk),
        work=partial(_work, variant=variant, max_bodies=max_bodies, missing=missing),
        splits=[f"{b}_{s}" for b in benchmarks for s in ("train", "test")],
        source={"format": "ntu", "path": str(src.resolve()), "variant": variant, "max_bodies": max_bodies,
                "missing_list": str(missing_list) if missing_list is not None else "built-in (published)",
                "body_selection": "tracks by bodyID ranked by motion energy, packed into non-overlapping slots"},
        counts={"outside_variant": outside},
    )



# The dataset authors' published lists (shahroudy/NTURGB-D, Matlab/NTU_RGBD120_samples_with_missing_skeletons.txt;
# its names of setups 1-17 are NTU_RGBD_samples_with_missing_skeletons.txt), shipped as package data.
_MISSING_FILE = "ntu_missing_samples.txt"
NTU120_MISSING_SAMPLES: frozenset[str] = _parse_missing_list(
    resources.files(__package__).joinpath(_MISSING_FILE).read_text(encoding="utf-8"), _MISSING_FILE)
NTU60_MISSING_SAMPLES: frozenset[str] = frozenset(n for n in NTU120_MISSING_SAMPLES if int(n[1:4]) <= 17)

FORMAT = DatasetFormat(
    name="ntu",
    help="NTU RGB+D 60/120 raw .skeleton files; xsub/xview (60) or xsub/xset (120) splits",
    src_help="folder of SsssCcccPpppRrrrAaaa.skeleton files",
    plan=plan_ntu,
    options=(
        ReaderOption("variant", str, "ntu60", "NTU RGB+D 60 or 120 (default 60)", choices=VARIANTS),
        ReaderOption("max_bodies", int, 2, "bodies kept per clip (default 2)", minimum=1),
        ReaderOption("missing_list", Path, None,
                     "file of sample names to skip (default: the published list of samples with missing skeletons)"),
        ReaderOption("chunk", int, 16, "files per work unit", minimum=1, cli=False),
    ),
)
