import math

import pytest
import torch
import torch.nn.functional as F

from resnotes.analysis import TensorMemoryTracker, dense_feature_reuse, training_step_memory
from resnotes.models import count_parameters, create_model
from resnotes.models.densenet import DenseLayer, densenet, densenet_bc, layers_per_block


@pytest.mark.parametrize(
    "depth, growth_rate, bottleneck, compression",
    [(40, 12, False, 1.0), (22, 5, False, 1.0), (100, 12, True, 0.5), (28, 7, True, 0.5), (16, 4, True, 0.3), (16, 4, True, 1.0)],
)
def test_every_block_output_width_follows_the_formula(depth, growth_rate, bottleneck, compression):
    factory = densenet_bc if bottleneck else densenet
    kwargs = {"compression": compression} if bottleneck else {}
    model = factory(depth=depth, growth_rate=growth_rate, **kwargs)
    n = (depth - 4) // (6 if bottleneck else 3)
    width = 2 * growth_rate if bottleneck else 16
    shapes = []
    hooks = [b.register_forward_hook(lambda _m, _i, out: shapes.append(tuple(out.shape))) for b in model.blocks]
    model(torch.randn(2, 3, 32, 32))
    for index, block in enumerate(model.blocks):
        expected = width + n * growth_rate  # k_0 + n k
        size = 32 >> index
        assert shapes[index] == (2, expected, size, size)
        assert block.out_channels == expected
        assert [layer.in_channels for layer in block.layers] == [width + l * growth_rate for l in range(n)]
        width = math.floor(compression * expected) if index < 2 else expected
    assert model.fc.in_features == width
    for hook in hooks:
        hook.remove()


@pytest.mark.parametrize(
    "name, exact",
    # Fixed by the architecture; the official Torch code prints the same counts.
    [("densenet40_k12", 1_019_722), ("densenet100_bc_k12", 769_162), ("densenet250_bc_k24", 15_324_406), ("densenet190_bc_k40", 25_624_430)],
)
def test_known_exact_counts(name, exact):
    assert count_parameters(create_model(name)) == exact


def test_bc_layer_has_a_4k_bottleneck_and_plain_layer_has_none():
    bc = densenet_bc(depth=16, growth_rate=6)
    layer = bc.blocks[0].layers[0]
    assert layer.conv1.kernel_size == (1, 1) and layer.conv1.out_channels == 24
    assert layer.conv2.kernel_size == (3, 3) and layer.conv2.out_channels == 6
    plain = densenet(depth=10, growth_rate=6)
    layer = plain.blocks[0].layers[0]
    assert layer.conv1.kernel_size == (3, 3) and layer.conv1.out_channels == 6
    assert not hasattr(layer, "conv2")


def test_a_layer_sees_every_earlier_feature_map():
    # Change only the block input: every layer's output must change, because
    # every layer receives x_0 through the concatenation.
    torch.manual_seed(0)
    block = densenet(depth=13, growth_rate=4).blocks[0].eval()
    x = torch.randn(1, 16, 8, 8)
    y = x.clone()
    y[:, 0] += 1.0
    out_x, out_y = block(x), block(y)
    for l in range(3):
        new = slice(16 + 4 * l, 16 + 4 * (l + 1))
        assert not torch.allclose(out_x[:, new], out_y[:, new])
    # ... and the block passes its input through unchanged, as the first channels.
    assert torch.equal(out_x[:, :16], x)


@pytest.mark.parametrize("bottleneck", [True, False])
def test_memory_efficient_mode_equals_plain_mode_forward_and_backward(bottleneck):
    torch.manual_seed(0)
    make = (lambda: densenet_bc(depth=22, growth_rate=6)) if bottleneck else (lambda: densenet(depth=13, growth_rate=6))
    plain = make().double()
    efficient = make().double()
    efficient.load_state_dict(plain.state_dict())
    efficient.memory_efficient = True
    assert efficient.memory_efficient and not plain.memory_efficient
    x = torch.randn(4, 3, 32, 32, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3])
    outputs = []
    for model in (plain, efficient):
        out = model(x)
        F.cross_entropy(out, y).backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-10)
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-9, atol=1e-12, msg=name)
    # Recomputation in the backward pass must not update BN's running statistics twice.
    for (name, a), b in zip(plain.named_buffers(), efficient.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_memory_efficient_mode_uses_much_less_memory():
    torch.manual_seed(0)
    # DenseNet-BC-100 (k=12), the target: at least 2x less memory. The
    # ratio does not depend on the batch size, so a small batch keeps CI fast.
    model = densenet_bc(depth=100, growth_rate=12)
    plain = training_step_memory(model, batch_size=4)
    model.memory_efficient = True
    efficient = training_step_memory(model, batch_size=4)
    assert plain > 2 * efficient > 0


def test_memory_tracker_counts_what_is_alive_at_the_peak():
    with TensorMemoryTracker() as tracker:
        a = torch.empty(1000, dtype=torch.float32)  # 4,000 bytes
        b = torch.empty(500, dtype=torch.float64)  # 4,000 bytes
        del a
        c = torch.empty(250, dtype=torch.float32)  # 1,000 bytes, after a was freed
        view = b[:10]  # a view allocates nothing
    assert tracker.peak == 8000
    assert tracker.current == 5000
    del b, c, view


def test_feature_reuse_matrix_shape_and_meaning():
    model = densenet_bc(depth=16, growth_rate=4)
    block, transition = model.blocks[0], model.transitions[0]
    n = len(block.layers)
    layer = block.layers[1]
    with torch.no_grad():
        layer.conv1.weight.zero_()
        layer.conv1.weight[:, 8 + 4 * 0 : 8 + 4 * 1] = 3.0  # layer 2 reads only layer 1's channels
    reuse = dense_feature_reuse(block, transition.conv.weight)
    assert reuse.shape == (n + 1, n + 1)
    assert reuse[1, 1] == 3.0 and reuse[0, 1] == 0.0
    assert torch.isnan(reuse[2, 1]) and torch.isnan(reuse[n, n - 1])
    assert not torch.isnan(reuse[:, n]).any()  # the transition sees every source
    last = dense_feature_reuse(model.blocks[2], model.fc.weight)
    assert torch.allclose(last[:, n], torch.stack([
        model.fc.weight[:, :k0].abs().mean() if s == 0 else model.fc.weight[:, k0 + 4 * (s - 1) : k0 + 4 * s].abs().mean()
        for s, k0 in zip(range(n + 1), [model.blocks[2].in_channels] * (n + 1))
    ]))  # fmt: skip


@pytest.mark.parametrize(
    "factory, kwargs, rule",
    [
        (densenet, {"depth": 41}, "depth must be 3n\\+4"),
        (densenet_bc, {"depth": 40.0}, "depth must be 6n\\+4"),
        (densenet_bc, {"depth": 97}, "depth must be 6n\\+4"),
        (densenet_bc, {"depth": 4}, "depth must be 6n\\+4"),
        (densenet, {"growth_rate": 0}, "growth_rate must be an integer >= 1"),
        (densenet_bc, {"growth_rate": 2.5}, "growth_rate must be an integer >= 1"),
        (densenet_bc, {"compression": 0}, "compression theta must be in \\(0, 1\\]"),
        (densenet_bc, {"compression": 1.5}, "compression theta must be in \\(0, 1\\]"),
        (densenet, {"drop_rate": 1.0}, "drop_rate must be in \\[0, 1\\)"),
    ],
)
def test_bad_arguments_are_rejected(factory, kwargs, rule):
    with pytest.raises(ValueError, match=rule):
        factory(**kwargs)


@pytest.mark.parametrize("bottleneck, convolutions", [(True, 2), (False, 1)])
def test_dropout_follows_every_convolution_of_a_layer(bottleneck, convolutions, monkeypatch):
    # The paper and the official code: a BC layer drops after its 1x1 and after its 3x3.
    layer = DenseLayer(8, growth_rate=4, bottleneck=bottleneck, drop_rate=0.5).train()
    dropped = []
    original = F.dropout

    def counting_dropout(x, p, training):
        dropped.append((x.shape[1], p))
        return original(x, p, training)

    monkeypatch.setattr(F, "dropout", counting_dropout)
    layer([torch.randn(2, 8, 4, 4)])
    assert len(dropped) == convolutions and all(p == 0.5 for _, p in dropped)
    assert dropped[-1][0] == 4  # the last dropout acts on the k new channels


def test_layers_per_block():
    assert layers_per_block(100, True) == 16
    assert layers_per_block(40, False) == 12
    assert layers_per_block(190, True) == 31
