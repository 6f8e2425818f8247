"""Device selection: the one rule for ``--device`` / ``train.device`` options."""

from __future__ import annotations

import torch

from stgcn.errors import ConfigError

__all__ = ["resolve_device", "DEVICE_CHOICES", "check_device_option"]

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N"


def check_device_option(option: str, name: str = "device") -> str:
    """``option`` when it is ``auto``, ``cpu``, ``cuda`` or ``cuda:N``, else a :class:`ConfigError` naming ``name``."""
    ok = isinstance(option, str) and (option in ("auto", "cpu", "cuda")
                                      or (option.startswith("cuda:") and option[5:].isdigit()))
    if not ok:
        raise ConfigError(f"{name} {option!r} is not valid; valid devices are {DEVICE_CHOICES}")
    return option


def resolve_device(option: str | torch.device, *, local_rank: int = 0, distributed: bool = False,
                   name: str = "device") -> torch.device:
    """The torch device an option names.

    Args:
        option: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``; a
            :class:`torch.device` is returned as is.
        local_rank: This process's GPU in distributed runs (``cuda`` and ``auto`` pick it; so does
            ``cuda:N`` when ``distributed``).
        distributed: Whether this is one process of a distributed run.
        name: The option's name in messages (``train.device``, ``--device``).

    Raises:
        ConfigError: an unknown option (listing the valid ones), CUDA asked for where there is none, or a
            CUDA index beyond the devices present.
    """
    if isinstance(option, torch.device):
        return option
    check_device_option(option, name)
    if option == "cpu" or (option == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(f"{name} {option!r}: CUDA is not available here (torch {torch.__version__}); "
                          f"valid devices here are auto, cpu")
    if option.startswith("cuda:") and not distributed:
        index = int(option[5:])
        if index >= torch.cuda.device_count():
            raise ConfigError(f"{name} {option!r}: only {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(option)
    return torch.device("cuda", local_rank)
