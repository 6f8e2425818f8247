"""The reference ST-GCN: the original code's structure, written here by us, with no fast paths.

It follows yysijie/st-gcn ``net/st_gcn.py`` literally. It is the correctness oracle of
:class:`~stgcn.models.stgcn.STGCN` (``tests/test_reference_parity.py``: same logits, gradients and BatchNorm
statistics) and the ``baseline`` of ``benchmarks.model``, whose every figure is also a ratio against the
original's way of computing: a 1x1 convolution to K*C_out channels, a ``view`` to
(N, K, C, T, V), ``torch.einsum('nkctv,kvw->nctw')``, a temporal ``nn.Sequential`` of separate BN / ReLU /
Gamma x 1 conv / BN / Dropout modules, the same block table, data BN over V*C per person, average pooling,
the mean over persons and a 1x1 convolution as classifier. Its parameter names are the original's
(``st_gcn_networks.i.tcn.2.weight``, ``edge_importance.i``, ``fcn.weight``...).

:func:`copy_weights` moves weights from an :class:`~stgcn.models.stgcn.STGCN` into a :class:`ReferenceSTGCN` of
the same architecture (and back), so both compute on identical numbers; the key map is
:mod:`stgcn.models.original_keys`, the one :mod:`stgcn.convert.original` uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.models.original_keys import stgcn_to_original_key
from stgcn.models.stgcn import STGCN

__all__ = ["ReferenceSTGCN", "reference_from_stgcn", "copy_weights", "BaselineSTGCN", "baseline_from_stgcn"]


class ConvTemporalGraphical(nn.Module):
    """The original's graph convolution: 1x1 conv to K*C_out channels, then einsum with A.

    Shape:
        x: (N, C_in, T, V); A: (K, V, V); output: (N, C_out, T, V).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = nn.Conv2d(in_channels, out_channels * kernel_size, kernel_size=(1, 1))

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        n, kc, t, v = x.size()
        x = x.view(n, self.kernel_size, kc // self.kernel_size, t, v)
        x = torch.einsum("nkctv,kvw->nctw", (x, A))
        return x.contiguous()


class STGCNUnit(nn.Module):
    """The original's ``st_gcn`` module: gcn, tcn (BN, ReLU, conv, BN, Dropout), residual, ReLU.

    ``residual`` is ``None`` for the first block (the original's ``lambda x: 0``), ``nn.Identity`` when
    shapes allow, else ``nn.Sequential(Conv2d 1x1 stride, BN)`` as there.

    Shape:
        x: (N, C_in, T, V); output: (N, C_out, ceil(T / stride), V).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: tuple[int, int], stride: int = 1,
                 dropout: float = 0.0, residual: bool = True) -> None:
        super().__init__()
        padding = ((kernel_size[0] - 1) // 2, 0)
        self.gcn = ConvTemporalGraphical(in_channels, out_channels, kernel_size[1])
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (kernel_size[0], 1), (stride, 1), padding),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout, inplace=True),
        )
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=(stride, 1)),
                nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
        res = 0 if self.residual is None else self.residual(x)
        x = self.gcn(x, A)
        x = self.tcn(x) + res
        return self.relu(x)


class ReferenceSTGCN(nn.Module):
    """The original ``Model``: data BN, ten ``st_gcn`` units, avg pool, person mean, 1x1 conv classifier.

    Args:
        A: The (K, V, V) partitioned adjacency (kept as a buffer, as the original).
        in_channels: C.
        num_classes: Output classes.
        blocks: (channels, temporal stride) per block.
        temporal_kernel: Gamma.
        edge_importance: Learnable (K, V, V) masks per block (else constant 1).
        dropout: Dropout probability in every block but the first.

    Shape:
        x: (N, C, T, V, M); output: (N, num_classes).
    """

    def __init__(self, A: torch.Tensor, in_channels: int, num_classes: int,
                 blocks: tuple[tuple[int, int], ...], temporal_kernel: int = 9, edge_importance: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("A", A.detach().clone().float())
        k, v = A.shape[0], A.shape[1]
        kernel_size = (temporal_kernel, k)
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        units = []
        c_in = in_channels
        for i, (c_out, stride) in enumerate(blocks):
            units.append(STGCNUnit(c_in, c_out, kernel_size, stride, dropout=0.0 if i == 0 else dropout,
                                   residual=i > 0))
            c_in = c_out
        self.st_gcn_networks = nn.ModuleList(units)
        if edge_importance:
            self.edge_importance = nn.ParameterList([nn.Parameter(torch.ones(k, v, v)) for _ in units])
        else:
            self.edge_importance = [1] * len(units)
        self.fcn = nn.Conv2d(c_in, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # data normalization
        n, c, t, v, m = x.size()
        x = x.permute(0, 4, 3, 1, 2).contiguous()
        x = x.view(n * m, v * c, t)
        x = self.data_bn(x)
        x = x.view(n, m, v, c, t)
        x = x.permute(0, 1, 3, 4, 2).contiguous()
        x = x.view(n * m, c, t, v)
        # forward
        for gcn, importance in zip(self.st_gcn_networks, self.edge_importance, strict=True):
            x = gcn(x, self.A * importance)
        # global pooling
        x = F.avg_pool2d(x, x.size()[2:])
        x = x.view(n, m, -1, 1, 1).mean(dim=1)
        # prediction
        x = self.fcn(x)
        return x.view(x.size(0), -1)


def reference_from_stgcn(model: STGCN) -> ReferenceSTGCN:
    """A :class:`ReferenceSTGCN` with the architecture and the weights of ``model``.

    Its edge importance masks are always learnable parameters (a model without them holds all-ones masks,
    which copy over exactly). Train/eval mode follows ``model``.

    Raises:
        ConfigError: ``model`` has a head the original has not (``pool`` other than ``mean``).
    """
    cfg = model.config
    if cfg.pool != "mean":
        raise ConfigError(f"the original ST-GCN pools globally (pool 'mean'); this model has pool {cfg.pool!r}")
    ref = ReferenceSTGCN(model.A, cfg.in_channels, cfg.num_classes, cfg.blocks, cfg.temporal_kernel,
                         edge_importance=True, dropout=cfg.dropout)
    copy_weights(model, ref)
    return ref.train(model.training)


# the names benchmarks.model and its results use ("baseline")
BaselineSTGCN = ReferenceSTGCN
baseline_from_stgcn = reference_from_stgcn


def _key_pairs(model: STGCN) -> list[tuple[str, str]]:
    """(our key, reference key) for every state_dict entry of ``model``."""
    pairs = []
    for key in model.state_dict():
        ref_key = stgcn_to_original_key(key)
        if ref_key is None:
            raise ValueError(f"state_dicts do not correspond: no original name for {key!r}")
        pairs.append((key, ref_key))
    return pairs


@torch.no_grad()
def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy every weight and buffer between an :class:`STGCN` and a :class:`ReferenceSTGCN`, either way.

    Args:
        src: The model to read (an STGCN or a ReferenceSTGCN).
        dst: The model to write (the other kind, same architecture).

    Raises:
        ValueError: when the two models' tensors do not correspond one to one with equal sizes.
    """
    if isinstance(src, STGCN) and isinstance(dst, ReferenceSTGCN):
        pairs = _key_pairs(src)
    elif isinstance(src, ReferenceSTGCN) and isinstance(dst, STGCN):
        pairs = [(b, a) for a, b in _key_pairs(dst)]
    else:
        raise ValueError(f"copy_weights needs an STGCN and a BaselineSTGCN (ReferenceSTGCN), got "
                         f"{type(src).__name__} and {type(dst).__name__}")
    s, d = src.state_dict(), dst.state_dict()
    if len(pairs) != len(s) or len(pairs) != len(d) or any(ks not in s or kd not in d for ks, kd in pairs):
        raise ValueError(f"state_dicts do not correspond: {len(s)} and {len(d)} entries, {len(pairs)} mapped")
    for ks, kd in pairs:
        value = s[ks]
        if d[kd].numel() != value.numel():
            raise ValueError(f"{ks} has {value.numel()} elements but {kd} has {d[kd].numel()}")
        if d[kd].shape != value.shape:
            value = value.reshape(d[kd].shape)  # classifier: Linear (C_out, C_in) <-> Conv2d (C_out, C_in, 1, 1)
        d[kd].copy_(value)
