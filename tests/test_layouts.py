"""Built-in and custom skeleton layouts."""

from __future__ import annotations

import json

import pytest

from stgcn.errors import ConfigError
from stgcn.graph.layouts import BUILTIN_LAYOUTS, Layout, get_layout, load_layout
from stgcn.graph.partitions import hop_distance

SIZES = {"openpose-18": 18, "ntu-rgb+d": 25, "coco-17": 17, "mediapipe-pose-33": 33, "mediapipe-hand-21": 21,
         "kinect-v1": 20, "kinect-v1-msr": 20, "ntu-rgb+d-mmaction": 25}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_builtin_layouts_are_connected_and_cited(name):
    layout = get_layout(name)
    assert layout.num_joints == SIZES[name]
    assert layout.source
    dist = hop_distance(layout.num_joints, layout.edges)
    assert (dist[layout.center] < float("inf")).all(), "every joint reaches the centre"
    bones = layout.bone_pairs()
    assert len(bones) == layout.num_joints and bones[layout.center] == (layout.center, layout.center)
    for joint, parent in bones:
        assert joint == parent or dist[joint, parent] == 1
    for a, b in layout.flip_pairs:
        swapped = {"left": "right", "right": "left"}
        name_a = "_".join(swapped.get(w, w) for w in layout.joints[a].split("_"))
        assert name_a == layout.joints[b]


def test_ntu_hand_chains_follow_the_original():
    ntu = get_layout("ntu-rgb+d")
    edges = {frozenset(e) for e in ntu.edges}
    # 1-based 22->23->8 and 24->25->12
    assert {frozenset((21, 22)), frozenset((22, 7)), frozenset((23, 24)), frozenset((24, 11))} <= edges
    assert ntu.center == 20 and ntu.joints[20] == "spine_shoulder"


def test_msr_layout_follows_body_model():
    msr = get_layout("kinect-v1-msr")
    assert msr.joints[4] == "left_hip" and msr.joints[6] == "hip_center" and msr.joints[19] == "head"
    assert frozenset((6, 3)) in {frozenset(e) for e in msr.edges}  # 1-based 7-4: hip centre - spine


def test_custom_layout_json_and_yaml(tmp_path):
    spec = {"joints": ["hip", "spine", "head", "l_hand", "r_hand"],
            "edges": [["hip", "spine"], ["spine", "head"], [1, 3], [1, 4]],
            "center": "spine", "flip_pairs": [["l_hand", "r_hand"]]}
    path = tmp_path / "five.json"
    path.write_text(json.dumps(spec))
    layout = get_layout(str(path))
    assert layout.name == "five" and layout.center == 1 and layout.edges[2] == (1, 3)
    assert layout.flip_pairs == ((3, 4),)
    yaml = pytest.importorskip("yaml")
    ypath = tmp_path / "five.yaml"
    ypath.write_text(yaml.safe_dump(spec))
    assert load_layout(ypath).edges == layout.edges
    assert Layout.from_dict(layout.to_dict()) == layout


@pytest.mark.parametrize("spec, message", [
    ({"joints": ["a", "b"], "edges": [["a", "c"]], "center": 0}, "'c' is not a joint name or index"),
    ({"joints": ["a", "b"], "edges": [[0, 5]], "center": 0}, r"edge \(0, 5\) has a joint index outside \[0, 2\)"),
    ({"joints": ["a", "b"], "edges": [[0, 0]], "center": 0}, "self-loop"),
    ({"joints": ["a", "b"], "edges": [[0, 1], [1, 0]], "center": 0}, "listed twice"),
    ({"joints": ["a", "b"], "edges": [[0, 1]]}, "missing required key 'center'"),
    ({"joints": ["a", "b"], "edges": [[0, 1]], "center": 0, "colour": 1}, "unknown key 'colour'; valid keys are name"),
    ({"joints": ["a", "a"], "edges": [], "center": 0}, "unique"),
])
def test_invalid_custom_layouts(tmp_path, spec, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=message) as info:
        load_layout(path)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)


def test_unreadable_layout_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read layout file"):
        load_layout(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json: not valid JSON"):
        load_layout(broken)
    with pytest.raises(ConfigError, match="valid layouts are openpose-18, ntu-rgb\\+d"):
        get_layout("open-pose")


def test_builtins_listed():
    assert sorted(BUILTIN_LAYOUTS) == sorted(SIZES)
