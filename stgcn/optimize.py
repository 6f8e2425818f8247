"""Inference-only ST-GCN: BatchNorm folded into the convolutions, channels-last layout, same logits.

:func:`optimize_for_inference` turns a trained :class:`~stgcn.model.STGCN` into a :class:`FusedSTGCN`, an
eval-only module that computes the same logits (float tolerance) with fewer passes over memory:

- Every eval-mode BatchNorm is an affine map and is folded into the convolution before it: BN1 into the
  graph convolution (its shift becomes a per-(joint, channel) bias, because the 1x1 convolution's bias is
  mixed over joints), BN2 into the temporal convolution, the residual BN into its 1x1 convolution. The data
  BN stays a (V, C) affine map.
- Activations live as (V, N*M, T, C) (joint-major, channels last; see :mod:`stgcn.model`): the graph
  convolution is plain matrix products, and the temporal convolution runs oneDNN's channels-last kernel,
  on CPU with the residual sum and the ReLU fused into it.
- The graph convolution mixes joints on the side with fewer channels: ``A`` first and then the 1x1
  convolution over (K, C_in) when C_in < C_out (the first block: 3 channels instead of K*64); the 1x1
  convolution first otherwise.
- Optionally the batch is processed in chunks of ``chunk_size`` clips (cache locality on CPU; results are
  the same since nothing in eval mode couples samples).

The result holds buffers only (no parameters): it cannot be trained. Feed it what the model takes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stgcn.errors import ConfigError
from stgcn.model import STGCN, STGCNBlock, _mix_then_project, _plain_ops

__all__ = ["optimize_for_inference", "FusedSTGCN", "FusedBlock"]


def _bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of an eval-mode BatchNorm: ``bn(x) = scale * x + shift`` per channel."""
    var = bn.running_var.double()
    mean = bn.running_mean.double()
    scale = 1.0 / torch.sqrt(var + bn.eps)
    if bn.weight is not None:
        scale = scale * bn.weight.double()
    shift = -mean * scale
    if bn.bias is not None:
        shift = shift + bn.bias.double()
    return scale, shift


def _mkldnn_fusion_available() -> bool:
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return torch.backends.mkldnn.is_available() and hasattr(ops, "_convolution_pointwise")
    except RuntimeError:  # the op namespace may raise on lookup in builds without it
        return False


_MKLDNN_FUSION = _mkldnn_fusion_available()


def _conv_relu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int, padding: int,
               residual: torch.Tensor | None) -> torch.Tensor:
    """``relu(conv(x) + residual)`` over the width of a (B, C, 1, T) channels-last image.

    On CPU the sum and ReLU run inside oneDNN's convolution (post-ops), saving two passes over memory;
    elsewhere, and while tracing or exporting, standard ops compute the same.
    """
    fusable = x.device.type == "cpu" and not (torch.is_grad_enabled() and x.requires_grad)  # no autograd there
    if _MKLDNN_FUSION and fusable and not _plain_ops():
        args = ([0, padding], [1, stride], [1, 1], 1)
        if residual is None:
            return torch.ops.mkldnn._convolution_pointwise(x, weight, bias, *args, "relu", [], None)
        return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, weight, bias, *args, "add", None,
                                                              "relu", [], None)
    out = F.conv2d(x, weight, bias, (1, stride), (0, padding))
    if residual is not None:
        out = out + residual
    return torch.relu(out)


class FusedBlock(nn.Module):
    """One ST-GCN block with its BatchNorms folded in, on the (V, N, T, C) layout of :mod:`stgcn.model`.

    Computes ``relu(conv_t(relu(gcn(x) + bias_wc)) + residual(x))`` where ``gcn`` already includes BN1's
    scale, ``conv_t`` includes BN2 and ``residual`` is nothing, the identity, or a 1x1 convolution with its
    BN folded in.

    Shape:
        h: (V, N, T, C_in) contiguous; output: (V, N, ceil(T / stride), C_out) contiguous.
    """

    def __init__(self, block: STGCNBlock, A: torch.Tensor) -> None:  # noqa: N803
        super().__init__()
        gcn, tcn = block.gcn, block.tcn
        k, c_out = gcn.num_partitions, gcn.out_channels
        c_in = gcn.conv.in_channels
        v = A.shape[1]
        a = (A * gcn.edge_importance).detach().double()  # (K, V, W)
        s1, h1 = _bn_affine(tcn.bn1)
        w = gcn.conv.weight.detach().double().reshape(k, c_out, c_in) * s1[None, :, None]  # (K, C_out, C_in)
        b = gcn.conv.bias.detach().double().reshape(k, c_out) if gcn.conv.bias is not None \
            else torch.zeros(k, c_out, dtype=torch.float64)
        # bias of the mixed 1x1 conv: sum_k b_k[c] * sum_v a[k, v, w], then BN1: * s1 + h1
        bias = torch.einsum("kc,kw->wc", b, a.sum(1)) * s1[None, :] + h1[None, :]  # (W, C_out)
        self.mix_first = c_in < c_out
        if self.mix_first:  # rows (k, w), columns v
            self.register_buffer("amat", a.transpose(1, 2).reshape(k * v, v).float())
        else:  # rows w, columns (k, v)
            self.register_buffer("amat", a.permute(2, 0, 1).reshape(v, k * v).float())
        self.register_buffer("weight", w.transpose(1, 2).contiguous().float())  # (K, C_in, C_out)
        self.register_buffer("bias", bias.unsqueeze(1).float())  # (W, 1, C_out)
        s2, h2 = _bn_affine(tcn.bn2)
        conv = tcn.conv
        tw = (conv.weight.detach().double() * s2[:, None, None, None]).transpose(2, 3)  # (C, C, 1, Gamma)
        tb = (conv.bias.detach().double() if conv.bias is not None else 0.0) * s2 + h2
        self.register_buffer("tconv_weight", tw.float().contiguous(memory_format=torch.channels_last))
        self.register_buffer("tconv_bias", tb.float())
        self.stride = conv.stride[0]
        self.padding = conv.padding[0]
        self.k, self.c_in, self.c_out = k, c_in, c_out
        res = block.residual
        self.residual = "none" if res is None else "identity" if isinstance(res, nn.Identity) else "conv"
        if self.residual == "conv":
            sr, hr = _bn_affine(res.bn)
            rw = res.conv.weight.detach().double().reshape(c_out, c_in) * sr[:, None]
            rb = (res.conv.bias.detach().double() if res.conv.bias is not None else 0.0) * sr + hr
            self.register_buffer("res_weight", rw.float())
            self.register_buffer("res_bias", rb.float())

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        v, n, t, c_in = h.shape
        k, c_out = self.k, self.c_out
        if self.mix_first:
            y = _mix_then_project(h.view(v, n * t, c_in), self.amat, self.weight)
        else:
            y = torch.matmul(h.reshape(v * n * t, c_in), self.weight)  # (K, V*N*T, C_out)
            y = torch.mm(self.amat, y.view(k * v, n * t * c_out))  # (W, N*T*C_out)
        y = y.view(v, n * t, c_out).add_(self.bias).relu_()
        image = y.view(v * n, 1, t, c_out).permute(0, 3, 1, 2)  # (V*N, C_out, 1, T) channels-last
        residual = None
        if self.residual == "identity":
            residual = h.view(v * n, 1, t, c_in).permute(0, 3, 1, 2)
        elif self.residual == "conv":
            hs = h[:, :, ::self.stride]
            ts = hs.shape[2]
            r = torch.addmm(self.res_bias, hs.reshape(v * n * ts, c_in), self.res_weight.t())
            residual = r.view(v * n, 1, ts, c_out).permute(0, 3, 1, 2)
        out = _conv_relu(image, self.tconv_weight, self.tconv_bias, self.stride, self.padding, residual)
        return out.permute(0, 2, 3, 1).reshape(v, n, -1, c_out)


class FusedSTGCN(nn.Module):
    """Eval-only ST-GCN with folded BatchNorms; built by :func:`optimize_for_inference`.

    Attributes:
        chunk_size: Clips per chunk (``None``: the whole batch at once). Chunks are processed one after
            the other; the logits do not depend on it.
        dtype: Compute dtype (``torch.float32`` or ``torch.bfloat16``); logits are float32 either way.

    Shape:
        x: (N, C, T, V, M); output: (N, num_classes) float32 logits.
    """

    def __init__(self, model: STGCN, chunk_size: int | None = None, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.config = model.config
        self.num_joints = model.num_joints
        self.num_features = model.num_features
        s, h = _bn_affine(model.data_bn)
        c, v = model.config.in_channels, model.num_joints
        # data BN channel index is v * C + c
        self.register_buffer("data_scale", s.float().view(v, 1, 1, c))
        self.register_buffer("data_shift", h.float().view(v, 1, 1, c))
        self.blocks = nn.ModuleList(FusedBlock(block, model.A) for block in model.blocks)
        self.register_buffer("fc_weight", model.fc.weight.detach().clone())
        self.register_buffer("fc_bias", model.fc.bias.detach().clone() if model.fc.bias is not None else None)
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.blocks.to(dtype)  # the data BN and the classifier stay float32
        self.eval()

    def train(self, mode: bool = True) -> FusedSTGCN:
        if mode:
            raise RuntimeError("FusedSTGCN is inference-only (BatchNorm is folded); train the STGCN instead")
        return super().train(False)

    def _check_input(self, x: torch.Tensor) -> None:
        c, v = self.config.in_channels, self.num_joints
        if x.dim() != 5 or x.shape[1] != c or x.shape[3] != v or x.shape[2] < 1 or x.shape[4] < 1:
            raise ValueError(f"expected input of shape (N, C={c}, T>=1, V={v}, M>=1), got {tuple(x.shape)}")

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v, m = x.shape
        h = x.permute(3, 0, 4, 2, 1).reshape(v, n * m, t, c)  # (V, N*M, T, C)
        h = torch.addcmul(self.data_shift, h.float(), self.data_scale).to(self.dtype).contiguous()
        for block in self.blocks:
            h = block(h)
        f = h.float().sum(dim=0).mean(dim=1) / v  # average over (V, T) -> (N*M, C_last)
        return f.view(n, m, -1).mean(dim=1)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features, persons averaged. Shape: x (N, C, T, V, M) -> (N, num_features)."""
        self._check_input(x)
        if self.chunk_size is None or x.shape[0] <= self.chunk_size:
            return self._features(x)
        return torch.cat([self._features(part) for part in x.split(self.chunk_size)])

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Classifier. Shape: features (N, num_features) -> (N, num_classes)."""
        return F.linear(features, self.fc_weight, self.fc_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@torch.no_grad()
def optimize_for_inference(model: STGCN, *, chunk_size: int | None = None,
                           dtype: torch.dtype = torch.float32) -> FusedSTGCN:
    """An eval-only copy of ``model`` with BatchNorm folded in: same logits, less work.

    The model's eval-mode computation (running BN statistics, dropout off) is reproduced within float
    tolerance; ``model`` itself is not modified. The result has no trainable parameters and refuses
    ``.train()``. It is traceable (``torch.jit.trace``, ``torch.onnx.export``) when ``chunk_size`` is None.

    Args:
        model: A trained :class:`~stgcn.model.STGCN` (its mode does not matter: eval statistics are used).
        chunk_size: Process the batch this many clips at a time (CPU cache locality); ``None`` for all at
            once. Logits do not depend on it.
        dtype: ``torch.float32`` (default, same logits) or ``torch.bfloat16`` (an opt-in: weights and
            activations in bfloat16, pooling and classifier in float32; fast only on CPUs with native
            bfloat16, e.g. AVX512-BF16/AMX, and GPUs).

    Returns:
        A :class:`FusedSTGCN` on the model's device.

    Raises:
        ConfigError: a chunk size that is not a positive integer, or a dtype other than the two above.

    Shape:
        Input (N, C, T, V, M); output (N, num_classes).
    """
    if not isinstance(model, STGCN):
        raise TypeError(f"optimize_for_inference expects an STGCN, got {type(model).__name__}")
    if dtype not in (torch.float32, torch.bfloat16):
        raise ConfigError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise ConfigError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    device = model.A.device
    return FusedSTGCN(model, chunk_size=chunk_size, dtype=dtype).to(device)
