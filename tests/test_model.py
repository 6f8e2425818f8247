"""The ST-GCN module: the notes' formula from its definition, shapes, gradients, invariances, golden output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stgcn.errors import ConfigError
from stgcn.graph.layouts import Layout
from stgcn.graph.partitions import Graph
from stgcn.models.config import GraphConfig, STGCNConfig
from stgcn.models.stgcn import STGCN, GraphConv

GOLDEN = Path(__file__).parent / "data" / "golden_model.npz"
PATH = Layout(name="path4", joints=("j0", "j1", "j2", "j3"), edges=((0, 1), (1, 2), (2, 3)), center=1)


def small_config(**kw) -> STGCNConfig:
    base = dict(num_classes=5, in_channels=3, graph=GraphConfig("coco-17", "spatial"),
                blocks=((16, 1), (32, 2), (32, 1)), dropout=0.0)
    base.update(kw)
    return STGCNConfig(**base)


def _definition_partitions() -> list[np.ndarray]:
    """Spatial partitions of the path 0-1-2-3 (centre 1) from the paper's definition, written out with loops.

    Returns Lambda_j^-1/2 A_j Lambda_j^-1/2 in (target i, source k) indexing.
    """
    v, alpha = 4, 0.001
    adjacent = {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}
    r = [1, 0, 1, 2]  # hop distance of each joint to the centre joint 1
    a_root = [[1.0 if i == k else 0.0 for k in range(v)] for i in range(v)]
    a_in = [[1.0 if (i, k) in adjacent and r[k] < r[i] else 0.0 for k in range(v)] for i in range(v)]
    a_out = [[1.0 if (i, k) in adjacent and r[k] >= r[i] else 0.0 for k in range(v)] for i in range(v)]
    parts = []
    for a_j in (a_root, a_in, a_out):
        lam = [sum(a_j[i][k] for k in range(v)) + alpha for i in range(v)]
        parts.append(np.array([[a_j[i][k] / np.sqrt(lam[i]) / np.sqrt(lam[k]) for k in range(v)]
                               for i in range(v)]))
    return parts


def test_notes_graph_conv_matches_definition_with_loops():
    torch.manual_seed(0)
    c_in, c_out, t, v, k = 3, 5, 4, 4, 3
    gcn = GraphConv(c_in, c_out, k, v).double()
    with torch.no_grad():
        gcn.conv.bias.zero_()
    w = gcn.conv.weight.detach()[:, :, 0, 0].numpy().reshape(k, c_out, c_in)  # W_j^T per partition
    x = torch.randn(2, c_in, t, v, dtype=torch.float64)
    a = torch.from_numpy(Graph(PATH, "spatial", normalization="notes").A).double()
    out = gcn(x, a).detach().numpy()

    parts = _definition_partitions()
    f = x.numpy()
    expected = np.zeros((2, c_out, t, v))
    for n in range(2):
        for tt in range(t):
            for i in range(v):
                for co in range(c_out):
                    total = 0.0
                    for j in range(k):
                        for kk in range(v):
                            for ci in range(c_in):
                                total += parts[j][i, kk] * f[n, ci, tt, kk] * w[j, co, ci]
                    expected[n, co, tt, i] = total
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)


def test_graph_conv_bias_and_edge_importance():
    """The conv bias is mixed by A like the rest (as the original does) and the mask multiplies A."""
    torch.manual_seed(1)
    gcn = GraphConv(2, 3, 3, 4).double()
    with torch.no_grad():
        gcn.edge_importance.uniform_(0.5, 1.5)
    a = torch.from_numpy(Graph(PATH, "spatial").A).double()
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64)
    y = gcn.conv(x).view(1, 3, 3, 5, 4)  # (N, K, C, T, V)
    expected = torch.einsum("nkctv,kvw->nctw", y, a * gcn.edge_importance)
    torch.testing.assert_close(gcn(x, a), expected)


def test_forward_shapes_and_feature_head_split():
    model = STGCN(small_config()).eval()
    x = torch.randn(3, 3, 20, 17, 2)
    with torch.no_grad():
        logits = model(x)
        features = model.forward_features(x)
    assert logits.shape == (3, 5) and features.shape == (3, 32)
    torch.testing.assert_close(model.forward_head(features), logits)


def test_default_table_is_the_notes_table():
    model = STGCN(STGCNConfig(num_classes=60, in_channels=2, graph=GraphConfig("ntu-rgb+d")))
    table = [(b.gcn.conv.in_channels, b.tcn.conv.out_channels, b.tcn.conv.stride[0]) for b in model.blocks]
    assert table == [(2, 64, 1), (64, 64, 1), (64, 64, 1), (64, 64, 1), (64, 128, 2), (128, 128, 1),
                     (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 256, 1)]
    assert model.blocks[0].residual is None
    assert isinstance(model.blocks[1].residual, torch.nn.Identity)
    assert model.blocks[4].residual is not None and model.blocks[0].tcn.conv.padding == (4, 0)
    assert model.blocks[0].gcn.conv.out_channels == 3 * 64  # K * C_out


@pytest.mark.parametrize("t", [1, 2, 3, 7, 33])
def test_any_number_of_frames(t):
    model = STGCN(small_config()).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, t, 17, 1))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = STGCN(small_config(dropout=0.1)).train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 16, 17, 2)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_edge_importance_flag_keeps_keys():
    on = STGCN(small_config(edge_importance=True))
    off = STGCN(small_config(edge_importance=False))
    assert on.state_dict().keys() == off.state_dict().keys()
    assert "blocks.0.gcn.edge_importance" in dict(on.named_parameters())
    assert "blocks.0.gcn.edge_importance" not in dict(off.named_parameters())


def test_person_order_does_not_change_eval_output():
    torch.manual_seed(0)
    model = STGCN(small_config()).eval()
    x = torch.randn(2, 3, 16, 17, 3)
    with torch.no_grad():
        ref = model(x)
        for perm in ([2, 0, 1], [1, 2, 0]):
            torch.testing.assert_close(model(x[..., perm]), ref, rtol=1e-5, atol=1e-5)


def test_bad_input_shapes_name_expected_and_actual():
    model = STGCN(small_config())
    with pytest.raises(ValueError, match=r"expected input of shape \(N, C=3, T>=1, V=17, M>=1\), got \(2, 3, 8, 17\)"):
        model(torch.randn(2, 3, 8, 17))
    with pytest.raises(ValueError, match=r"got \(2, 2, 8, 17, 1\)"):
        model(torch.randn(2, 2, 8, 17, 1))
    with pytest.raises(ValueError, match=r"got \(2, 3, 8, 18, 1\)"):
        model(torch.randn(2, 3, 8, 18, 1))


def test_config_validation_and_round_trip(tmp_path):
    cfg = small_config()
    assert STGCNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="temporal_kernel must be odd"):
        small_config(temporal_kernel=4)
    with pytest.raises(ConfigError, match="unknown key 'colour'; valid keys are num_classes, in_channels"):
        STGCNConfig.from_dict({**cfg.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="dropout"):
        small_config(dropout=1.5)
    with pytest.raises(ConfigError, match="valid strategies"):
        GraphConfig("coco-17", "radial")
    # a custom layout file is read once and kept inline, so the config is self-contained
    path = tmp_path / "tri.json"
    path.write_text('{"joints": ["a", "b", "c"], "edges": [["a", "b"], ["b", "c"]], "center": "b"}')
    custom = small_config(graph=GraphConfig(str(path)))
    path.unlink()
    again = STGCNConfig.from_dict(custom.to_dict())
    assert again.graph.layout.joints == ("a", "b", "c")
    assert STGCN(again)(torch.randn(1, 3, 5, 3, 1)).shape == (1, 5)


def _golden_inputs() -> tuple[STGCN, torch.Tensor]:
    torch.manual_seed(1234)
    model = STGCN(small_config()).eval()
    x = torch.from_numpy(np.random.default_rng(1234).standard_normal((2, 3, 24, 17, 2)).astype(np.float32))
    return model, x


def test_seeded_model_matches_golden_file():
    model, x = _golden_inputs()
    with torch.no_grad():
        out = model(x).numpy()
    expected = np.load(GOLDEN)["logits"]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


if __name__ == "__main__":  # regenerate the golden file: python tests/test_model.py
    m, inp = _golden_inputs()
    with torch.no_grad():
        np.savez(GOLDEN, logits=m(inp).numpy())
    print(f"wrote {GOLDEN}")
