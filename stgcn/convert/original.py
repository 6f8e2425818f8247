"""Import checkpoints of the original ST-GCN code (yysijie/st-gcn, mmskeleton's st_gcn) into :class:`STGCN`.

The original ``net/st_gcn.py`` ``Model`` names its weights ``data_bn``, ``st_gcn_networks.i.gcn.conv``,
``st_gcn_networks.i.tcn.{0,2,3}`` (BN, temporal conv, BN), ``st_gcn_networks.i.residual.{0,1}`` (conv, BN),
``edge_importance.i``, ``fcn`` (a 1x1 conv classifier) and the buffer ``A`` (the key map is
:mod:`stgcn.models.original_keys`). The mapping is strict: any missing or unexpected key is an error that
lists them. What the weights determine (input channels, classes,
K, V, the block table) is read from them and checked against the options given.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stgcn.errors import CheckpointError
from stgcn.graph.partitions import Graph
from stgcn.models.config import DEFAULT_BLOCKS, GraphConfig, STGCNConfig
from stgcn.models.original_keys import ORIGINAL_BLOCK, original_to_stgcn_key
from stgcn.models.stgcn import STGCN
from stgcn.utils.checks import state_dict_mismatch
from stgcn.utils.integrity import check_finite, check_zip

__all__ = ["convert_original", "load_original_state_dict"]


def load_original_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read an original checkpoint: a plain state_dict, or a dict holding one under ``state_dict``.

    Loaded with ``weights_only=True``: a file that needs arbitrary unpickling is refused. The zip container's
    CRCs are checked first, and NaN/inf weights are refused.
    """
    path = Path(path)
    check_zip(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except Exception as e:  # torch raises many types for truncated/foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch state_dict ({_first_line(e)})") from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected a state_dict of tensors (original ST-GCN key names)")
    check_finite(obj, path)
    # weights saved from nn.DataParallel carry a 'module.' prefix
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def convert_original(source: str | Path | dict[str, torch.Tensor], *, layout: str = "openpose-18",
                     strategy: str = "spatial", num_classes: int | None = None, max_hop: int = 1,
                     dilation: int = 1, temporal_kernel: int | None = None,
                     strides: tuple[int, ...] | None = None, dropout: float = 0.0) -> STGCN:
    """Build an :class:`STGCN` in ``original`` normalisation holding an original checkpoint's weights.

    Args:
        source: Path to the original ``.pt`` file, or its state_dict.
        layout: The layout the checkpoint was trained on (``openpose-18`` for the Kinetics model,
            ``ntu-rgb+d`` for NTU).
        strategy: Partition strategy it was trained with.
        num_classes: Expected number of classes; ``None`` takes it from the weights.
        max_hop: Its graph's max_hop.
        dilation: Its graph's dilation.
        temporal_kernel: Expected Gamma; ``None`` takes it from the weights.
        strides: Temporal stride per block; ``None`` uses the original table (weights do not record it).
        dropout: Dropout for further training (has no effect in eval mode).

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError: unreadable file, missing/unexpected keys, or weights that contradict the options.
    """
    where = str(source) if not isinstance(source, dict) else "state_dict"
    sd = load_original_state_dict(source) if not isinstance(source, dict) else dict(source)
    unknown = sorted(k for k in sd if original_to_stgcn_key(k) is None)
    if unknown:
        raise CheckpointError(f"{where}: unexpected key(s) for an original ST-GCN checkpoint: {unknown}")
    for key in ("data_bn.weight", "fcn.weight", "st_gcn_networks.0.gcn.conv.weight"):
        if key not in sd:
            raise CheckpointError(f"{where}: missing key {key!r}; not an original ST-GCN checkpoint")

    graph = Graph(layout, strategy, max_hop, dilation, normalization="original")
    k, v = graph.K, graph.V
    data_bn = sd["data_bn.weight"].numel()
    if data_bn % v:
        raise CheckpointError(f"{where}: data_bn has {data_bn} channels, not a multiple of V={v} "
                              f"joints of layout {layout!r}")
    in_channels = data_bn // v
    for key in ("A", "edge_importance.0"):
        if key in sd and tuple(sd[key].shape) != (k, v, v):
            raise CheckpointError(f"{where}: {key} has shape {tuple(sd[key].shape)}, but layout {layout!r} with "
                                  f"strategy {strategy!r} and max_hop {max_hop} gives (K={k}, V={v}, V={v})")
    n_blocks = 1 + max(int(m.group(1)) for key in sd if (m := ORIGINAL_BLOCK.fullmatch(key)))
    blocks = []
    for i in range(n_blocks):
        conv = sd.get(f"st_gcn_networks.{i}.gcn.conv.weight")
        tconv = sd.get(f"st_gcn_networks.{i}.tcn.2.weight")
        if conv is None or tconv is None:
            raise CheckpointError(f"{where}: block {i} lacks gcn.conv or tcn.2 weights")
        if conv.shape[0] % k:
            raise CheckpointError(f"{where}: block {i} gcn.conv has {conv.shape[0]} output channels, not a "
                                  f"multiple of K={k} partitions of strategy {strategy!r}")
        blocks.append(conv.shape[0] // k)
    channels = tuple(blocks)
    if strides is None:
        if channels != tuple(c for c, _ in DEFAULT_BLOCKS):
            raise CheckpointError(f"{where}: block channels {list(channels)} differ from the original table; "
                                  "pass strides= (one temporal stride per block)")
        strides = tuple(s for _, s in DEFAULT_BLOCKS)
    if len(strides) != n_blocks:
        raise CheckpointError(f"{where}: {n_blocks} blocks in the weights but {len(strides)} strides given")
    c_in = None
    for i, (c_out, stride) in enumerate(zip(channels, strides, strict=True)):
        has_projection = f"st_gcn_networks.{i}.residual.0.weight" in sd
        needs_projection = i > 0 and (c_in != c_out or stride != 1)
        if has_projection != needs_projection:
            raise CheckpointError(f"{where}: block {i} {'has' if has_projection else 'lacks'} a residual "
                                  f"projection, inconsistent with stride {stride} and channels {c_in}->{c_out}")
        c_in = c_out
    blocks = list(zip(channels, strides, strict=True))
    gamma = sd["st_gcn_networks.0.tcn.2.weight"].shape[2]
    if temporal_kernel is not None and gamma != temporal_kernel:
        raise CheckpointError(f"{where}: temporal kernel in the weights is {gamma}, option says {temporal_kernel}")
    classes = sd["fcn.weight"].shape[0]
    if num_classes is not None and classes != num_classes:
        raise CheckpointError(f"{where}: the classifier has {classes} classes, option says {num_classes}")
    edge_importance = any(key.startswith("edge_importance.") for key in sd)
    config = STGCNConfig(
        num_classes=classes, in_channels=in_channels,
        graph=GraphConfig(layout=layout, strategy=strategy, max_hop=max_hop, dilation=dilation,
                          normalization="original"),
        temporal_kernel=gamma, blocks=tuple(blocks), edge_importance=edge_importance, dropout=dropout)
    model = STGCN(config)

    mapped: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        new = original_to_stgcn_key(key)
        assert new is not None
        mapped[new] = value.reshape(value.shape[:2]) if key == "fcn.weight" else value
    if "A" in sd and not torch.allclose(sd["A"].float(), model.A, atol=1e-6):
        raise CheckpointError(f"{where}: the A buffer differs from the original code's graph for layout "
                              f"{layout!r}, strategy {strategy!r}, max_hop {max_hop}: wrong options?")
    mapped.setdefault("A", model.A)
    if not edge_importance:
        for i in range(n_blocks):
            mapped[f"blocks.{i}.gcn.edge_importance"] = torch.ones(k, v, v)
    missing, extra, shape = state_dict_mismatch(mapped, model.state_dict())
    if missing or extra:
        raise CheckpointError(f"{where}: does not match the architecture; missing {missing}, unexpected {extra}")
    if shape is not None:
        raise CheckpointError(f"{where}: {shape[0]} has shape {shape[1]}, expected {shape[2]}")
    model.load_state_dict(mapped, strict=True)
    return model.eval()

