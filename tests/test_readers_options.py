"""The format declarations: options checked before a reader runs, and the ``stgcn prepare`` CLI built from them.

No data needed: every check here fails (or parses) before a source file would be read.
"""

from __future__ import annotations

import argparse
import inspect
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from stgcn.cli.main import build_parser
from stgcn.data.prepare import PREPARE_FORMATS, plan_source, prepare
from stgcn.data.readers import FORMATS
from stgcn.data.readers.base import DatasetFormat, ReaderOption, check_keypoints
from stgcn.errors import ConfigError, DataError
from stgcn.graph.layouts import get_layout

COMMON_FLAGS = {"-h", "--help", "--dtype", "--workers", "--overwrite", "--no-progress"}


def _format_parsers() -> dict[str, argparse.ArgumentParser]:
    root = build_parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    prep = sub.choices["prepare"]
    fmts = next(a for a in prep._actions if isinstance(a, argparse._SubParsersAction))
    return dict(fmts.choices)


def test_formats_are_listed_once_in_order():
    names = [f.name for f in FORMATS]
    assert names == ["nw-ucla", "msr-action3d", "utkinect", "ntu", "kinetics-json", "stgcn-npy", "pyskl", "keypoints"]
    assert list(PREPARE_FORMATS) == names and all(PREPARE_FORMATS[f.name] is f for f in FORMATS)


@pytest.mark.parametrize("declared", FORMATS, ids=lambda f: f.name)
def test_declared_options_are_the_plan_keywords(declared: DatasetFormat):
    params = inspect.signature(declared.plan).parameters
    keywords = {n: p for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert [o.name for o in declared.options] == list(keywords)
    for opt in declared.options:
        assert opt.default == keywords[opt.name].default, opt.name
        assert opt.help and (opt.type is bool) == opt.flag


@pytest.mark.parametrize("declared", FORMATS, ids=lambda f: f.name)
def test_cli_parser_has_exactly_the_declared_flags(declared: DatasetFormat):
    parser = _format_parsers()[declared.name]
    actions = {s: a for a in parser._actions for s in a.option_strings}
    cli = [o for o in declared.options if o.cli]
    assert set(actions) - COMMON_FLAGS == {o.cli_flag for o in cli}
    for opt in cli:
        action = actions[opt.cli_flag]
        assert action.dest == opt.name and action.help == opt.help
        if opt.flag:
            assert isinstance(action, argparse._StoreTrueAction) and action.default is None
        else:
            assert action.default == opt.default
            assert action.choices == (list(opt.choices) if opt.choices is not None else None)
    assert parser.get_default("options") == [o.name for o in cli]
    assert parser.description == declared.help


def test_cli_values_reach_the_options():
    args = build_parser().parse_args(["prepare", "ntu", "src", "out", "--max-bodies", "3", "--variant", "ntu120"])
    assert args.format == "ntu" and args.max_bodies == 3 and args.variant == "ntu120"
    assert args.missing_list is None and args.options == ["variant", "max_bodies", "missing_list"]
    args = build_parser().parse_args(["prepare", "pyskl", "a.pkl", "out", "--normalize",
                                      "--class-names", "names.txt"])
    assert args.normalize is True and args.class_names == Path("names.txt") and args.layout is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prepare", "nw-ucla", "src", "out", "--test-view", "4"])


@pytest.mark.parametrize("declared", FORMATS, ids=lambda f: f.name)
def test_prepare_rejects_an_undeclared_option(tmp_path, declared: DatasetFormat):
    valid = ", ".join(o.name for o in declared.options)
    with pytest.raises(ConfigError, match=f"format '{declared.name}' has no option 'bogus'; valid options are "
                                          f"{valid}$"):
        prepare(declared.name, tmp_path / "missing", tmp_path / "out", bogus=1)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt, option, value, match", [
    ("nw-ucla", "test_view", 4, r"option 'test_view': 4 is not valid; valid values are 1, 2, 3"),
    ("nw-ucla", "test_view", "3", r"option 'test_view' must be an integer"),
    ("msr-action3d", "action_set", "AS4", r"option 'action_set': 'AS4' is not valid; valid values are all, AS1"),
    ("utkinect", "boundaries", "fixed", r"option .boundaries.: .fixed. is not valid; valid values are original, modif"),
    ("ntu", "variant", "ntu90", r"option 'variant': 'ntu90' is not valid; valid values are ntu60, ntu120"),
    ("ntu", "max_bodies", 0, r"option 'max_bodies' must be an integer >= 1, got 0"),
    ("ntu", "max_bodies", True, r"option 'max_bodies' must be an integer"),
    ("ntu", "missing_list", 3, r"option 'missing_list' must be a file path, got 3"),
    ("kinetics-json", "class_names", 5, r"option 'class_names' must be a file path or list or tuple"),
    ("pyskl", "normalize", "yes", r"option 'normalize' must be true or false"),
    ("keypoints", "max_persons", 1.5, r"option 'max_persons' must be an integer"),
    ("stgcn-npy", "chunk", 0, r"option 'chunk' must be an integer >= 1"),
])
def test_prepare_rejects_a_bad_option_value(tmp_path, fmt, option, value, match):
    with pytest.raises(ConfigError, match=f"format '{fmt}': {match}"):
        plan_source(fmt, tmp_path / "missing", **{option: value})


def test_option_values_that_pass():
    nw = PREPARE_FORMATS["nw-ucla"]
    assert nw.check_options({}) == {"test_view": 3, "chunk": 32}
    assert nw.check_options({"test_view": np.int64(2), "chunk": None}) == {"test_view": 2, "chunk": 32}
    kp = PREPARE_FORMATS["keypoints"]
    opts = kp.check_options({"layout": get_layout("coco-17"), "labels": Path("l.csv"), "class_names": ["a", "b"]})
    assert opts["layout"].name == "coco-17" and opts["class_names"] == ["a", "b"] and opts["max_persons"] is None
    opt = ReaderOption("mode", str, "a", "a or b", choices=("a", "b"))
    assert opt.cli_flag == "--mode" and opt.check("b", "x") == "b" and opt.check(None, "x") == "a"


def test_ntu_missing_samples_ship_as_package_data():
    from stgcn.data.readers.ntu import NTU60_MISSING_SAMPLES, NTU120_MISSING_SAMPLES

    text = resources.files("stgcn.data.readers").joinpath("ntu_missing_samples.txt").read_text(encoding="utf-8")
    names = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(names) == len(set(names)) == len(NTU120_MISSING_SAMPLES) == 535
    assert len(NTU60_MISSING_SAMPLES) == 302


def test_check_keypoints_is_the_one_rule():
    lay = get_layout("coco-17")
    ok = np.zeros((2, 1, 17, 2), np.float32)
    assert check_keypoints(ok, "c", lay, 2, channels=["x", "y"], scores=np.ones((2, 1, 17)), coordinates=True) is ok
    cases = [
        (np.zeros((0,)), {}, "c: empty clip"),
        (np.zeros((2, 17, 2)), {}, r"c: keypoints have shape \(2, 17, 2\); expected \(T, M, V, C\) = \(T, M, 17, C\)"),
        (np.zeros((0, 1, 17, 2)), {}, r"c: empty clip \(0 frames\)"),
        (np.zeros((2, 0, 17, 2)), {}, "c: no person in the clip"),
        (np.zeros((2, 1, 18, 2)), {}, "c: 18 joints per person; layout 'coco-17' has 17"),
        (np.zeros((2, 1, 17, 4)), {"coordinates": True}, "c: 4 coordinates per joint"),
        (np.zeros((2, 1, 17, 2)), {"num_channels": 3}, "c: 2 channels per joint; expected 3"),
        (np.zeros((2, 1, 17, 2)), {"channels": ["x"]}, r"c: 1 channel names \['x'\] for 2 coordinates"),
        (np.full((2, 1, 17, 2), np.nan), {}, "c: keypoints contain NaN or inf"),
        (ok, {"scores": np.ones((2, 1, 16))}, "c: scores have shape"),
        (ok, {"scores": np.full((2, 1, 17), np.inf)}, "c: scores contain NaN or inf"),
    ]
    for x, kwargs, match in cases:
        with pytest.raises(DataError, match=match):
            check_keypoints(x, "c", lay, **kwargs)
    empty = np.zeros((0, 2, 17, 3), np.float32)
    assert check_keypoints(empty, "c", None, allow_empty=True) is empty
