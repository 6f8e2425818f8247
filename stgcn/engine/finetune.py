"""Fine-tuning: start a training run from the weights of any stgcn checkpoint.

``train.init_from: PATH`` names a checkpoint (one of ours, a converted original ST-GCN, a converted
MMAction2/PYSKL model). The run's model takes the checkpoint's architecture (graph, blocks, temporal kernel,
edge importance, input channels) with the store's class count; a model key the training config sets must equal
the checkpoint's, except ``num_classes`` and ``dropout``, which the config may change. The backbone is loaded
strictly; the classifier too when the class counts agree, else it keeps its fresh initialisation (logged).
The store's layout and the preprocessed channels must be the checkpoint's, or a :class:`ConfigError` says what
differs. The init applies at the start of a run only: a resumed run continues from its own ``last.pt``.

``train.freeze_blocks: N`` keeps the input BatchNorm and the first N blocks fixed for the whole run (they are
left out of the optimiser); ``train.head_only_epochs: K`` trains the classifier alone for the first K epochs
(the other parameters get no gradient), then everything not frozen.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

import torch

from stgcn.engine.checkpoint import Checkpoint, load_checkpoint
from stgcn.engine.compat import check_store_layout
from stgcn.errors import ConfigError
from stgcn.graph.layouts import get_layout
from stgcn.models.config import STGCNConfig
from stgcn.models.stgcn import STGCN
from stgcn.utils.checks import state_dict_mismatch

if TYPE_CHECKING:
    from stgcn.data.store import SkeletonStore
    from stgcn.engine.config import RunConfig, TrainConfig

__all__ = ["read_init_checkpoint", "finetune_model_config", "init_from_checkpoint", "set_trainable",
           "prepare_network"]

log = logging.getLogger(__name__)

_OVERRIDABLE = ("num_classes", "dropout")


def read_init_checkpoint(path: str) -> Checkpoint:
    """The checkpoint ``train.init_from`` names (a missing or foreign file is a :class:`CheckpointError`)."""
    return load_checkpoint(path)


def finetune_model_config(config: TrainConfig, store: SkeletonStore, in_channels: int,
                          source: Checkpoint) -> STGCNConfig:
    """The run's model config: the checkpoint's architecture with the store's class count.

    Raises:
        ConfigError: the store's layout or the preprocessed channels differ from the checkpoint's, or the
            training config's model section sets an architecture key to another value than the checkpoint's.
    """
    from stgcn.engine.config import UNRESOLVED_MODEL

    where = f"train.init_from {config.train.init_from}"
    ck = source.config
    ck_layout = get_layout(ck.graph.layout)
    try:
        check_store_layout(ck, store, error=ConfigError)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}; fine-tune on a store of the checkpoint's layout") from None
    if ck.in_channels != in_channels:
        raise ConfigError(f"{where}: the checkpoint takes {ck.in_channels} channels per joint, the preprocessed "
                          f"clips of {store.path} have {in_channels} (store channels {', '.join(store.channels)})")
    model = dataclasses.replace(ck, num_classes=len(store.class_names))
    for f in dataclasses.fields(STGCNConfig):
        mine, default = getattr(config.model, f.name), getattr(UNRESOLVED_MODEL, f.name)
        if f.name == "graph":
            for g in dataclasses.fields(mine):
                value = getattr(mine, g.name)
                if value != getattr(default, g.name) and value != getattr(ck.graph, g.name):
                    if g.name == "layout" and get_layout(value) == ck_layout:
                        continue
                    raise ConfigError(f"{where}: model.graph.{g.name} is {value!r}, the checkpoint's is "
                                      f"{getattr(ck.graph, g.name)!r}; leave it out to take the checkpoint's")
        elif mine != default and mine != getattr(ck, f.name):
            if f.name not in _OVERRIDABLE:
                raise ConfigError(f"{where}: model.{f.name} is {mine!r}, the checkpoint's is "
                                  f"{getattr(ck, f.name)!r}; leave it out to take the checkpoint's")
            model = dataclasses.replace(model, **{f.name: mine})
    return model


def init_from_checkpoint(net: STGCN, source: Checkpoint, where: str) -> None:
    """Copy the checkpoint's weights into ``net``: the backbone strictly, the classifier when it fits.

    Raises:
        ConfigError: a backbone key or shape that differs (named in the message).
    """
    state = source.model.state_dict()
    own = net.state_dict()
    head = [k for k in own if k.startswith("fc.")]
    backbone = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, extra, shape = state_dict_mismatch(backbone, {k: v for k, v in own.items() if k not in head})
    if missing or extra:
        raise ConfigError(f"{where}: backbone keys differ (missing {missing[:4]}, unexpected {extra[:4]})")
    if shape is not None:
        raise ConfigError(f"{where}: {shape[0]} has shape {shape[1]} in the checkpoint, the model needs {shape[2]}")
    n_src, n_own = source.config.num_classes, net.config.num_classes
    if n_src == n_own:
        backbone.update({k: state[k] for k in head})
        log.info("%s: loaded all weights (%d classes)", where, n_own)
    else:
        log.info("%s: loaded the backbone; the classifier is new (%d classes instead of the checkpoint's %d)",
                 where, n_own, n_src)
    with torch.no_grad():
        net.load_state_dict({**own, **backbone}, strict=True)


def set_trainable(net: STGCN, *, freeze_blocks: int = 0, head_only: bool = False) -> None:
    """``requires_grad`` of every parameter: the head always, the input BN and the first ``freeze_blocks``
    blocks never, the rest unless ``head_only``.

    Raises:
        ConfigError: ``freeze_blocks`` larger than the model's block count.
    """
    n = len(net.blocks)
    if freeze_blocks > n:
        raise ConfigError(f"train.freeze_blocks is {freeze_blocks}, but the model has {n} blocks")
    for name, p in net.named_parameters():
        if name.startswith("fc."):
            p.requires_grad_(True)
        elif name.startswith("data_bn.") and freeze_blocks > 0:
            p.requires_grad_(False)
        elif name.startswith("blocks.") and int(name.split(".")[1]) < freeze_blocks:
            p.requires_grad_(False)
        else:
            p.requires_grad_(not head_only)


def prepare_network(net: STGCN, run: RunConfig, *, resume: bool) -> None:
    """Before the optimiser and DDP: the ``init_from`` weights (a new run only) and the frozen blocks."""
    if run.init_from is not None and not resume:
        init_from_checkpoint(net, read_init_checkpoint(run.init_from), f"train.init_from {run.init_from}")
    set_trainable(net, freeze_blocks=run.freeze_blocks or 0)
