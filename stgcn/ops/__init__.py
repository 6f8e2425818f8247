"""Kernels of the ST-GCN network, each with a public name, a docstring and its own tests.

- :mod:`stgcn.ops.layout`: the internal (V, T, N, C) activation layout; ``plain_ops()`` / ``autocast_on()``.
- :mod:`stgcn.ops.graph_conv`: the graph convolution per joint pair, mix-first (with recompute) or
  project-first.
- :mod:`stgcn.ops.edge_rounds`: the per-joint-pair graph convolution as a few batched products.
- :mod:`stgcn.ops.dispatch`: choosing among those kernels per input shape (rules, autotuning, pins).
- :mod:`stgcn.ops.tiled_conv`: the tiled real-DFT temporal convolution (forward and backward).
- :mod:`stgcn.ops.temporal_conv`: its autograd Function, the BN-ReLU-conv recompute Function and the fused
  inference ``relu(conv + residual)``.
- :mod:`stgcn.ops.recompute`: saved-tensor recompute hooks, BatchNorm statistics under checkpointing.
- :mod:`stgcn.ops.bn_fold`: folding eval-mode BatchNorms into the layer before them.

The network that uses them is :mod:`stgcn.models.stgcn` (layers in :mod:`stgcn.models.layers`); the
inference-only copy is :mod:`stgcn.inference.optimize`.
"""
