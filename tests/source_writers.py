"""Writers of small files in the exact published formats, for the reader tests (no real data needed)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np


def ntu_text(frames: list[list[tuple[str, np.ndarray]]]) -> str:
    """A ``.skeleton`` text: per frame a list of ``(body_id, xyz (25, 3))``."""
    lines = [str(len(frames))]
    for bodies in frames:
        lines.append(str(len(bodies)))
        for body_id, xyz in bodies:
            lines.append(f"{body_id} 0 1 1 1 1 0 0.01 -0.25 2")
            lines.append("25")
            for j in range(25):
                x, y, z = xyz[j]
                lines.append(f"{x:.6f} {y:.6f} {z:.6f} 300.1 200.2 1000.3 500.4 -0.2 0.03 0.96 -0.1 2")
    return "\n".join(lines) + "\n"


def msr_text(x: np.ndarray) -> str:
    """MSR Action3D ``*_skeleton3D.txt``: x (T, 20, 3) -> 20 ``x y z c`` lines per frame."""
    return "".join(f"{a:.6f} {b:.6f} {c:.6f} 1.000000\n" for frame in x for a, b, c in frame)


def utkinect_text(ids: list[int], x: np.ndarray) -> str:
    """UTKinect ``joints_sSS_eEE.txt``: a frame id then 20 x ``x y z`` per line."""
    rows = zip(ids, x, strict=True)
    return "".join(f"{i}  " + "  ".join(f"{v:.6f}" for v in frame.ravel()) + "\n" for i, frame in rows)


def kinetics_obj(num_frames: int, persons: int, seed: int = 0, label: str = "a", label_index: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data = []
    for f in range(num_frames):
        skeleton = []
        for _ in range(persons):
            skeleton.append({"pose": [round(float(v), 3) for v in rng.random(36)],
                             "score": [round(float(v), 3) for v in rng.random(18)]})
        data.append({"frame_index": f + 1, "skeleton": skeleton})
    return {"data": data, "label": label, "label_index": label_index}


def write_kinetics(root: Path, clips: dict[str, dict[str, tuple[int, int, int]]]) -> None:
    """``clips[split][video_id] = (frames, persons, label_index)``; writes folders and label files."""
    for split, videos in clips.items():
        folder = root / f"kinetics_{split}"
        folder.mkdir(parents=True)
        labels = {}
        for k, (vid, (frames, persons, label)) in enumerate(videos.items()):
            obj = kinetics_obj(frames, persons, seed=k, label=f"class {label}", label_index=label)
            (folder / f"{vid}.json").write_text(json.dumps(obj))
            labels[vid] = {"has_skeleton": persons > 0, "label": f"class {label}", "label_index": label}
        (root / f"kinetics_{split}_label.json").write_text(json.dumps(labels))


def write_stgcn_npy(root: Path, split: str, data: np.ndarray, names: list[str], labels: list[int],
                    protocol: int = 2) -> None:
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / f"{split}_data.npy", data)
    with open(root / f"{split}_label.pkl", "wb") as f:
        pickle.dump((names, labels), f, protocol=protocol)


def pyskl_annotation(name: str, label: int, m: int, t: int, v: int = 17, c: int = 2, seed: int = 0,
                     scores: bool = True) -> dict:
    rng = np.random.default_rng(seed)
    ann = {"frame_dir": name, "label": label, "img_shape": (1080, 1920), "original_shape": (1080, 1920),
           "total_frames": t, "keypoint": (rng.random((m, t, v, c)) * 1000).astype(np.float32)}
    if scores:
        ann["keypoint_score"] = rng.random((m, t, v)).astype(np.float32)
    return ann


def write_pyskl(path: Path, annotations: list[dict], split: dict[str, list[str]] | None, protocol: int = 4) -> None:
    obj = annotations if split is None else {"split": split, "annotations": annotations}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def openpose_frame(people: list[np.ndarray]) -> dict:
    """One OpenPose ``--write_json`` frame: people as (V, 3) arrays of x, y, confidence."""
    return {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": [round(float(v), 3) for v in p.ravel()],
                                        "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
                                        "hand_right_keypoints_2d": []} for p in people]}


def write_openpose_folder(folder: Path, frames: list[list[np.ndarray]]) -> None:
    folder.mkdir(parents=True)
    for t, people in enumerate(frames):
        (folder / f"{folder.name}_{t:012d}_keypoints.json").write_text(json.dumps(openpose_frame(people)))
