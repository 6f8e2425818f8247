"""The run directory: its log, metrics and TensorBoard files, and the training state ``last.pt`` (model,
optimiser, scheduler, scaler and the RNG states of every process) that makes a resumed run bit-identical."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stgcn.engine.checkpoint import atomic_torch_save
from stgcn.errors import CheckpointError, ConfigError
from stgcn.utils.atomic import atomic_write_text, sweep_temps
from stgcn.utils.checks import is_int
from stgcn.utils.integrity import check_zip

__all__ = ["TRAIN_STATE_FORMAT", "RESUMABLE_KEYS", "read_train_state", "write_train_state", "rng_state",
           "set_rng_state", "check_resume_config", "LogTee", "open_tensorboard", "has_tqdm", "progress_bar",
           "append_jsonl", "truncate_jsonl", "check_run_dir", "sweep_run_dir"]

log = logging.getLogger(__name__)

TRAIN_STATE_FORMAT = "stgcn-train-state"
# config keys that may change when resuming (they do not change what is computed)
RESUMABLE_KEYS = ("train.epochs", "train.num_workers", "train.quiet", "train.eval_every", "train.eval_batch_size",
                  "train.device")


def check_run_dir(run_dir: Path, resume: bool) -> None:
    """Refuse to resume nothing or to overwrite a run; create the directory.

    Raises:
        ConfigError: ``resume`` without ``last.pt``, or ``last.pt`` without ``resume``.
    """
    last = run_dir / "last.pt"
    if resume and not last.exists():
        raise ConfigError(f"{run_dir}: nothing to resume (no last.pt); drop --resume to start a new run")
    if not resume and last.exists():
        raise ConfigError(f"{run_dir}: already holds a run (last.pt); pass --resume to continue it or choose "
                          f"another --out")
    run_dir.mkdir(parents=True, exist_ok=True)


# ----------------------------------------------------------------------------------------- states
def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as tensors and plain lists (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state(legacy=True)
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"algorithm": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": {"version": int(py_state[0]), "state": [int(x) for x in py_state[1]],
                   "gauss_next": py_state[2]},
    }


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    n = state["numpy"]
    np.random.set_state((n["algorithm"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k not in ("layout",):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_resume_config(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    old, new = _flatten(saved), _flatten(current)
    changed = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k) and k not in RESUMABLE_KEYS]
    if changed:
        shown = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
        raise ConfigError(f"{path}: cannot resume: the config differs from the run's ({shown}"
                          f"{'; ...' if len(changed) > 4 else ''}); only {', '.join(RESUMABLE_KEYS)} may change")


def read_train_state(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Load a ``last.pt`` training state with ``weights_only=True`` (its zip CRCs checked first)."""
    if path.is_file():
        check_zip(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no training state to resume from") from None
    except Exception as e:
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: unreadable training state (truncated or foreign file: {msg})") from None
    if not isinstance(state, dict) or state.get("format") != TRAIN_STATE_FORMAT:
        raise CheckpointError(f"{path}: not an stgcn training state (expected the last.pt of `stgcn train`)")
    return state


def write_train_state(path: Path, state: dict[str, Any]) -> None:
    """Write a training state atomically (``format`` and ``format_version`` are added)."""
    atomic_torch_save({"format": TRAIN_STATE_FORMAT, "format_version": 1, **state}, path)


# ------------------------------------------------------------------------------------------ files
class LogTee:
    """Adds a file handler for the run's ``train.log`` to the ``stgcn`` logger while training."""

    def __init__(self, path: Path | None, quiet_rank: bool) -> None:
        self.logger = logging.getLogger("stgcn")
        self.handler: logging.Handler | None = None
        self.old_level = self.logger.level
        self.quiet_rank = quiet_rank
        if path is not None:
            self.handler = logging.FileHandler(path, encoding="utf-8")
            self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            self.handler.setLevel(logging.INFO)

    def __enter__(self) -> LogTee:
        if self.quiet_rank:
            self.logger.setLevel(logging.WARNING)
        elif self.handler is not None:
            if self.logger.getEffectiveLevel() > logging.INFO:
                self.logger.setLevel(logging.INFO)
            self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.handler is not None:
            self.logger.removeHandler(self.handler)
            self.handler.close()
        self.logger.setLevel(self.old_level)


def open_tensorboard(run_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.info("TensorBoard logging off: tensorboard is not installed (pip install 'stgcn[tensorboard]')")
        return None
    return SummaryWriter(log_dir=str(run_dir))


def has_tqdm() -> bool:
    try:
        import tqdm  # noqa: F401
    except ImportError:
        log.info("no progress bars: tqdm is not installed (pip install 'stgcn[train]')")
        return False
    return True


def progress_bar(total: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete JSON-object lines of ``path``; a torn or foreign line is dropped (with a warning)."""
    if not path.exists():
        return []
    records, dropped = [], 0
    for line in path.read_bytes().decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        if isinstance(record, dict) and is_int(record.get("epoch")):
            records.append(record)
        else:
            dropped += 1
    if dropped:
        log.warning("%s: dropped %d incomplete or malformed line(s) (an interrupted write)", path, dropped)
    return records


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Add an epoch's record to a metrics file, atomically: the file is rewritten beside itself and renamed,
    so an interruption (a kill, a full disk) leaves the previous complete file, never a torn line. A record
    of the same epoch replaces the old one."""
    records = [r for r in _read_jsonl(path) if r["epoch"] != record.get("epoch")]
    _write_jsonl(path, [*records, record])


def truncate_jsonl(path: Path, epochs_done: int) -> None:
    """Repair a metrics file for a run resumed after ``epochs_done`` epochs (0: a new run): drop torn lines,
    lines of later epochs (written before an interruption) and repeated epochs (the last one is kept)."""
    if not path.exists():
        return
    by_epoch: dict[int, dict[str, Any]] = {}
    for r in _read_jsonl(path):
        if 0 < r["epoch"] <= epochs_done:
            by_epoch[r["epoch"]] = r
    _write_jsonl(path, [by_epoch[e] for e in sorted(by_epoch)])


def sweep_run_dir(run_dir: Path) -> None:
    """Remove the temporary files an interrupted run left in ``run_dir`` (``.last.pt.*``, ...)."""
    for name in ("last.pt", "best.pt", "final.pt", "config.yaml", "metrics.jsonl"):
        sweep_temps(run_dir / name)
