# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 2. PyramidNet: widen every unit a little
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/02_pyramidnet.ipynb)
#
# A ResNet keeps its width constant within a stage and doubles it at the first
# unit of the next one, exactly where the resolution halves. Han, Kim and Kim
# ("Deep Pyramidal Residual Networks", CVPR 2017) asked what happens if the
# width grows *gradually* instead, by the same small step in every unit, so
# that the network looks like a pyramid. This chapter reproduces the survey's
# section 3.2: the widening rule (formula 2), the pyramidal unit with its
# zero-padded shortcut, the parameter counts of the paper's table, the claim
# that deleting units barely hurts a PyramidNet, and a training run against
# the pre-activation ResNet of [Chapter 1](01_residual_unit.ipynb).

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the training runs below took about 16 minutes
# > on 2 CPU cores (measured; the other cells were not timed).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes @ git+https://github.com/resnotes/resnotes@v0.2.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect

import matplotlib.pyplot as plt
import torch

from resnotes.analysis import lesion_study, lesioned, unit_output_shapes
from resnotes.data import DeviceBatches, load_cifar
from resnotes.models import count_flops, count_parameters, get_spec
from resnotes.models.preact_resnet import preact_resnet
from resnotes.models.pyramidnet import PyramidBasicUnit, pyramid_widths, pyramidnet, zero_pad_shortcut
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile, paper_recipe
from resnotes.report import Table, banner
from resnotes.train import fit

profile = get_profile()
print(banner(profile))

# %% [markdown]
# ## Formula (2): a constant step per unit
#
# Let $N$ be the total number of residual units (three stages of $n$, so
# $N = 3n$) and $\alpha$ the *widening factor*. The additive PyramidNet sets
# the width of unit $k$ to
#
# $$
# D_1 = 16 + \frac{\alpha}{N}, \qquad D_k = D_{k-1} + \frac{\alpha}{N}
# \quad (k = 2, \dots, N),
# $$
#
# so the last unit is $16 + \alpha$ channels wide. The step applies to every
# unit, the first unit of each stage included. The multiplicative variant,
# which the paper compares against, multiplies instead:
# $D_k = D_{k-1} \cdot \alpha^{1/N}$, ending at $16\alpha$.
#
# Two details differ between sources; we follow the official code. First, the
# survey writes $D_1 = 16$. In the code, 16 is the width of the stem (call it
# $D_0$), and the first unit already adds $\alpha/N$. Second, the paper floors
# each $D_k$, while the code rounds the exact value. Either way the last unit
# is exactly $16 + \alpha$ wide.
#
# The figure reads the width of every unit off real `resnotes` models with a
# forward hook: PyramidNet-110 with $\alpha = 48$ (additive), a multiplicative
# PyramidNet-110 with $\alpha = 4$, and the pre-activation ResNet-110 of
# Chapter 1. All three end 64 channels wide (for the bottleneck variants,
# times 4).

# %%
networks = {
    "ResNet-110 (doubling per stage)": preact_resnet(depth=110),
    "PyramidNet-110, additive, α=48": pyramidnet(depth=110, alpha=48),
    "PyramidNet-110, multiplicative, α=4": pyramidnet(depth=110, alpha=4, widening="multiplicative"),
}
fig, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
for (label, net), style in zip(networks.items(), ["-", "-", "--"]):
    widths = [shape[1] for shape in unit_output_shapes(net, net.units())]
    ax.step(range(1, len(widths) + 1), widths, style, where="mid", label=label)
for boundary in (18.5, 36.5):
    ax.axvline(boundary, color="grey", lw=0.8, ls=":")
ax.set_xlabel("unit index $k$ (dotted: the resolution halves)")
ax.set_ylabel("channels $D_k$")
ax.set_title("Width of each residual unit, read from the models")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# The same rule, as numbers: the first units of PyramidNet-110 with
# $\alpha = 48$ grow by $48/54 \approx 0.89$ channels per unit, and the first
# unit of stages 2 and 3 (units 19 and 37) widens by that same step, not by
# a factor of two.

# %%
widths = pyramid_widths(54, 48)
print("units 1-6:   ", widths[:6])
print("units 17-21: ", widths[16:21])
print("units 35-39: ", widths[34:39])
print("unit 54:     ", widths[-1])

# %% [markdown]
# ## The pyramidal unit and its shortcut
#
# Because every unit is wider than its input, the identity shortcut must
# produce more channels than it receives. PyramidNet pads the missing channels
# with zeros, so no projection convolution is needed, and where the unit
# downsamples it average-pools the shortcut by 2×2. The paper also reworked the
# unit itself. It removed the first ReLU, because a ReLU on the shortcut path
# throws information away. It added a BN at the end of the branch. There is no
# ReLU after the addition:

# %%
print(inspect.getsource(zero_pad_shortcut))
print(inspect.getsource(PyramidBasicUnit))

# %% [markdown]
# The padding is plain `F.pad` on the channel dimension. It keeps the input's
# device and dtype, so the model runs on a CPU, on any GPU and under autocast.
# (Some public implementations build the zeros with `torch.cuda.FloatTensor`,
# which fails on a CPU.) Here it widens a 2-channel feature map to 4 and
# downsamples it:

# %%
x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
shortcut = zero_pad_shortcut(x, out_channels=4, stride=2)
print("input shape", tuple(x.shape), "-> shortcut shape", tuple(shortcut.shape))
print("channel 0 pooled:", shortcut[0, 0].tolist())
print("channels 2 and 3 are zero:", bool((shortcut[0, 2:] == 0).all()))

# %% [markdown]
# And when the residual branch outputs zero (its last BN scaled to zero), the
# unit is exactly its shortcut:

# %%
torch.manual_seed(0)
unit = PyramidBasicUnit(in_channels=16, width=18, stride=2).eval()
torch.nn.init.zeros_(unit.bn3.weight)
torch.nn.init.zeros_(unit.bn3.bias)
x = torch.randn(2, 16, 32, 32)
print("unit(x) equals the zero-padded, pooled x exactly:", torch.equal(unit(x), zero_pad_shortcut(x, 18, 2)))

# %% [markdown]
# ## The paper's table, counted live
#
# The survey's Table 5 lists seven PyramidNets. We count each one's parameters
# with our models, beside the table's figure, with the forward FLOPs for one
# 32×32 image from `torch.utils.flop_counter`. The error columns are the
# figures given in the official repository's README (jhkim89/PyramidNet). For
# PyramidNet-110 with $\alpha=48$, the survey's Table 5 gives 4.58% and
# 23.12% instead, against 4.62% and 23.31% in that README.

# %%
readme_errors = {  # CIFAR-10 / CIFAR-100 top-1 error (%) from the official README
    "pyramidnet110_a48": (4.62, 23.31),
    "pyramidnet110_a84": (4.27, 20.21),
    "pyramidnet110_a270": (3.73, 18.25),
    "pyramidnet164_a270_bottleneck": (3.48, 17.01),
    "pyramidnet200_a240_bottleneck": (3.44, 16.51),
    "pyramidnet236_a220_bottleneck": (3.40, 16.37),
    "pyramidnet272_a200_bottleneck": (3.31, 16.35),
}
rows = []
for name, (c10, c100) in readme_errors.items():
    spec = get_spec(name)
    model = spec.build()
    ours = count_parameters(model)
    unit = "bottleneck" if spec.kwargs["bottleneck"] else "basic"
    rows.append([
        spec.kwargs["depth"], unit, spec.kwargs["alpha"], f"{ours / 1e6:.2f}M", f"{spec.paper_params / 1e6:.1f}M",
        f"{(ours - spec.paper_params) / spec.paper_params:+.1%}", f"{count_flops(model) / 1e9:.2f}", f"{c10:.2f}", f"{c100:.2f}",
    ])  # fmt: skip
Table(["depth", "unit", "α", "our params", "table", "gap", "GFLOPs / image", "C10 error (%)", "C100 error (%)"], rows)

# %% [markdown]
# Every count is within 5% of the table. The largest gap, about +4% for
# PyramidNet-110 with $\alpha = 48$, is also there in the official code,
# which builds 1.77M parameters for that row: we follow the code, not the
# rounded figure.
#
# Parameters are not cost. PyramidNet-110 with $\alpha=48$ has the parameter
# count of ResNet-110 (Chapter 1), but about 1.6 times its FLOPs: 0.81
# against 0.51 GFLOPs per image. Its early, high-resolution units are wider
# than the ResNet's 16 channels. The four bottleneck networks, on the other
# hand, trade width for depth at a nearly constant budget: about 27M
# parameters and 9 GFLOPs each. Even so, the error still falls as they get
# deeper and narrower.
#
# **An erratum in the survey.** The survey's Table 8 labels its PyramidNet row
# "bottleneck, α=270" and gives it 26.0M parameters, 3.31% and 16.35%. In
# Table 5 those are the numbers of the depth-272 network with
# $\alpha = 200$. The bottleneck network with $\alpha = 270$ is the depth-164
# one, with 27.0M parameters (and 3.48% / 17.01% in the official README).
# Our live counts agree: 26.2M for depth 272 with $\alpha=200$, 27.2M for
# depth 164 with $\alpha=270$.
#
# ## Training: PyramidNet against ResNet, same depth and budget
#
# For a fair comparison, we give PyramidNet the same depth as the ResNet
# and pick the integer $\alpha$ whose parameter count comes closest to the
# ResNet's. At depth 110, this is the paper's own pairing: ResNet-110 and
# PyramidNet-110 with $\alpha=48$ both have about 1.7M parameters. The profile
# sets the depth, the data and the schedule. Under `paper`, the schedule is
# PyramidNet's, not ResNet's: 300 epochs with Nesterov momentum, with the
# learning rate divided by 10 at epochs 150 and 225. Both networks see the same
# data order, augmentation and schedule, and the model kept is the one with
# the best validation accuracy.

# %% tags=["nbval-ignore-output"]
depth = profile.pick(smoke=8, demo=32, fast=110, paper=110)
resnet_params = count_parameters(preact_resnet(depth=depth))
alpha = min(range(0, 300), key=lambda a: abs(count_parameters(pyramidnet(depth=depth, alpha=a)) - resnet_params))
print(f"depth {depth}: ResNet has {resnet_params:,} parameters; PyramidNet with alpha={alpha} has "
      f"{count_parameters(pyramidnet(depth=depth, alpha=alpha)):,}")  # fmt: skip
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())

# %% tags=["nbval-ignore-output"]
# Han et al.: 300 epochs, Nesterov momentum, lr / 10 at 50% and 75% (the step schedule).
config = profile.train_config(**profile.pick(smoke={}, demo={}, fast={}, paper=paper_recipe("pyramidnet110_a48")))
candidates = {f"ResNet-{depth}": lambda: preact_resnet(depth=depth), f"PyramidNet-{depth} (α={alpha})": lambda: pyramidnet(depth=depth, alpha=alpha)}
runs, trained = {}, {}
for name, build in candidates.items():
    torch.manual_seed(0)
    trained[name] = build()
    runs[name] = fit(trained[name], data, config, name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
rows = [
    [name, f"{h.meta['params']:,}", f"{h.epochs[-1]['train_loss']:.3f}", f"{h.best_val_acc:.2%}", f"{h.test_acc:.2%}",
     f"{sorted(h.column('seconds'))[len(h.epochs) // 2]:.1f} s"]
    for name, h in runs.items()
]  # fmt: skip
first = next(iter(runs.values()))
caption = f"{first.meta['dataset']}, {first.meta['data_source']}; profile {profile.name!r}, {first.config['epochs']} epochs, seed {first.config['seed']}; {first.meta['hardware']}"
Table(["network", "parameters", "final train loss", "best val accuracy", "test accuracy", "time per epoch (median)"], rows, caption=caption)

# %% [markdown]
# The time per epoch shows the FLOPs difference of the table above: at the
# same parameter count, PyramidNet's wider early units cost more compute per
# image.
#
# For reference, on full CIFAR-10 with the paper's 300-epoch schedule,
# PyramidNet-110 with $\alpha=48$ reaches 4.58% error (the survey's Table 5)
# against 6.37% for pre-activation ResNet-110 (He et al. 2016).
# A short run under `demo` or `fast` is not that experiment, and the table
# above says which profile produced it.
#
# ## Deleting units at test time
#
# The survey says that deleting residual units from a trained PyramidNet
# barely hurts, even for the units that downsample. In a ResNet, the
# downsampling units are the ones that double the width, and deleting one is
# known to be harmful (Veit et al., 2016). To test the claim, we take each
# trained network and delete one unit at a time. The unit then computes only
# its shortcut (`resnotes.analysis.lesioned`). We measure the test error each
# time. The downsampling units are marked. For the ResNet, deleting a
# downsampling unit leaves its 1×1 projection shortcut, which alone must now
# do the unit's job; for PyramidNet it leaves the pooled, zero-padded input.

# %% tags=["nbval-ignore-output"]
test_batches = DeviceBatches(data.test_images, data.test_labels, 500, mean=data.mean, std=data.std, train=False)
fig, ax = plt.subplots(figsize=(8, 3.8), constrained_layout=True)
summary = []
for name, model in trained.items():
    units = model.units()
    base_error = 1 - runs[name].test_acc
    errors = [1 - acc for acc in lesion_study(model, units, test_batches)]
    change = [100 * (e - base_error) for e in errors]
    ax.plot(range(1, len(units) + 1), change, marker="o", markersize=4, label=name)
    n = len(units) // 3
    downsampling = [n, 2 * n]  # 0-based indices of the first units of stages 2 and 3
    summary.append([name, f"{100 * base_error:.2f}%", f"{max(change[i] for i in downsampling):+.2f}",
                    f"{max(c for i, c in enumerate(change) if i not in downsampling):+.2f}", f"{sum(change) / len(change):+.2f}"])  # fmt: skip
for index in downsampling:
    ax.axvline(index + 1, color="grey", lw=0.8, ls=":")
ax.set_xlabel("deleted unit (dotted: downsampling units)")
ax.set_ylabel("change in test error (points)")
ax.set_title(f"Deleting one unit at a time, {data.name}, profile {profile.name!r}", fontsize=10)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
Table(["network", "test error", "worst, downsampling unit", "worst, other unit", "mean change"], summary, caption="Change in test error, in percentage points")

# %% [markdown]
# Under the `smoke` profile the networks have barely trained, and this figure
# says nothing. Under `demo` and `fast`, read it against the survey's claim:
# does deleting a downsampling unit cost the ResNet much more than the
# PyramidNet, and do the other units matter little for both? The caption
# and title name the profile, dataset and hardware of the run that produced
# the figure.
#
# **Summing up.** PyramidNet spreads the ResNet's width increases over every
# unit, by formula (2). It pads its shortcut with zeros rather than projecting
# it, and reorders the unit (no first ReLU, a final BN). At the same depth and
# parameter budget it is a drop-in replacement for the ResNet. The paper's
# full-schedule numbers above show what it gains.
