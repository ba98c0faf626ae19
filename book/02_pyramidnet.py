# ---
# jupyter:
#   accelerator: GPU
#   colab:
#     gpuType: T4
#     provenance: []
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: accelerator,colab,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
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
# that the network looks like a pyramid. This chapter reproduces section 3.2
# of the survey the book follows (a Chinese-language survey of deep residual
# networks; the [introduction](intro.md) describes it): the widening rule
# (formula 2), the pyramidal unit with its zero-padded shortcut, the parameter
# counts of the paper's table, the claim that deleting units barely hurts a
# PyramidNet, and a training run against the pre-activation ResNet of
# [Chapter 1](01_residual_unit.ipynb).

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the whole chapter took 10 minutes on 2 CPU
# > cores (measured; its last cell prints the time of the run shown here).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes==0.3.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect

import matplotlib.pyplot as plt
import torch

import resnotes as rn
from resnotes.analysis import lesion_study, unit_output_shapes
from resnotes.models.preact_resnet import PreActResNet
from resnotes.models.pyramidnet import (
    PyramidBasicUnit,
    PyramidNet,
    pyramid_widths,
    zero_pad_shortcut,
)

profile = rn.start_chapter()

# %% [markdown]
# ## Formula (2): a constant step per unit
#
# Let $N$ be the total number of residual units (three stages of $n$, so
# $N = 3n$) and $\alpha$ the *widening factor*. The additive PyramidNet widens
# every unit by the same step, $\alpha/N$: unit $k$ (counting from 1) is
#
# $$
# D_k = \left\lfloor 16 + \frac{k\,\alpha}{N} \right\rfloor
# \qquad (k = 1, \dots, N)
# $$
#
# channels wide, so the last unit is $16 + \alpha$ channels wide. The step
# applies to every unit, the first unit of each stage included. The
# multiplicative variant, which the paper compares against, multiplies by the
# same factor instead, $D_k = \lfloor 16\,\alpha^{k/N} \rfloor$, ending at
# $16\alpha$.
#
# This is the paper's formula (2), written for the exact width. The survey
# prints the recursion $D_k = D_{k-1} + \alpha/N$ and drops the paper's floor;
# three more details of its version need care. First, the index: its $D_1 = 16$
# is the width of the stem and the $N$ units are $k = 2, \dots, N+1$ (its Table 4
# writes the same widths as $16 + \alpha(k-1)/N$). We call the stem $D_0$ and
# number the units from 1, so the first unit is $16 + \alpha/N$ wide in both
# notations. Second, its glosses: it calls $N$ the total number of *layers* and
# $\alpha$ the output channels of the last layer, but $N$ counts residual *units*
# (54 in PyramidNet-110, whose 110 layers hold two convolutions per unit), and
# the last unit is $16 + \alpha$ wide, not $\alpha$ (64 channels for
# $\alpha = 48$). Third, the rounding: the paper floors each width, and the
# official code rounds it half up, which is what our models do. Either must be
# applied to the exact width, not at each step of the recursion: floored at
# every step, a width that grows by $\alpha/N < 1$ per unit would never leave 16.
# Applied to the exact width, both end exactly $16 + \alpha$ wide.
#
# The figure reads the width of every unit off real `resnotes` models with a
# forward hook: PyramidNet-110 with $\alpha = 48$ (additive), a multiplicative
# PyramidNet-110 with $\alpha = 4$, and the pre-activation ResNet-110 of
# Chapter 1. All three end 64 channels wide (for the bottleneck variants,
# times 4).

# %%
networks = {
    "ResNet-110 (doubling per stage)": PreActResNet(depth=110),
    "PyramidNet-110, additive, α=48": PyramidNet(depth=110, alpha=48),
    "PyramidNet-110, multiplicative, α=4": PyramidNet(
        depth=110, alpha=4, widening="multiplicative"
    ),
}
fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
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
# unit itself. It removed the ReLU at the start of the *residual branch*,
# which then begins with BN → conv; the paper measured this to help. It added
# a BN at the end of the branch. There is no ReLU after the addition, so the
# shortcut path carries no nonlinearity at all:

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
same = torch.equal(unit(x), zero_pad_shortcut(x, 18, 2))
print("unit(x) equals the zero-padded, pooled x exactly:", same)

# %% [markdown]
# ## The paper's table, counted live
#
# The survey's Table 5 lists seven PyramidNets. We count each one's parameters
# with our models, beside the table's figure, with the forward FLOPs for one
# 32×32 image from `torch.utils.flop_counter`. The error columns are the
# figures given in the official repository's README (jhkim89/PyramidNet). For
# two rows the survey's Table 5 differs from that README: PyramidNet-110 with
# $\alpha=48$ (4.58% and 23.12%, the means of the paper's Table 4, which the
# survey quotes; 4.62% and 23.31% in the README)
# and with $\alpha=84$ (4.26% and 20.66%, against 4.27% and 20.21%).

# %%
pyramidnets = [
    "pyramidnet110_a48",
    "pyramidnet110_a84",
    "pyramidnet110_a270",
    "pyramidnet164_bottleneck_a270",
    "pyramidnet200_bottleneck_a240",
    "pyramidnet236_bottleneck_a220",
    "pyramidnet272_bottleneck_a200",
]
rn.paper_table(pyramidnets)

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
# ResNet's. At depth 110 that rule would pick $\alpha = 47$ (1,726,940
# parameters against ResNet-110's 1,730,522); the paper pairs ResNet-110 with
# $\alpha = 48$ (1,772,706, 2.4% more), so under `fast` and `paper` the chapter
# trains the paper's network. The profile
# sets the depth, the data and the schedule. Under `paper`, the schedule is
# PyramidNet's, not ResNet's: 300 epochs with Nesterov momentum, with the
# learning rate divided by 10 at epochs 150 and 225. Both networks see the same
# data order, augmentation and schedule, and the model kept is the one with
# the best validation accuracy.

# %% tags=["nbval-ignore-output"]
depth = profile.pick(smoke=8, demo=32, fast=110, paper=110)
resnet_params = rn.count_parameters(PreActResNet(depth=depth))


def budget_gap(a):
    return abs(rn.count_parameters(PyramidNet(depth=depth, alpha=a)) - resnet_params)


# At depth 110 (`fast`, `paper`): the paper's network, PyramidNet-110 with alpha=48.
alpha = 48 if depth == 110 else min(range(0, 300), key=budget_gap)
pyramid_params = rn.count_parameters(PyramidNet(depth=depth, alpha=alpha))
print(f"depth {depth}: ResNet has {resnet_params:,} parameters;")
print(f"PyramidNet with alpha={alpha} has {pyramid_params:,}")
data = rn.load_cifar("cifar10", **profile.data_kwargs())
print(data)

# %% tags=["nbval-ignore-output"]
# Under `paper`: Han et al.'s 300 epochs, Nesterov momentum, lr / 10 at 50% and 75%.
config = rn.make_config("pyramidnet110_a48", profile)
built_from = {
    f"ResNet-{depth}": ("preact_resnet20", {"depth": depth}),
    f"PyramidNet-{depth} (α={alpha})": (
        "pyramidnet110_a48",
        {"depth": depth, "alpha": alpha},
    ),
}
resnet_name, pyramid_name = built_from
# The ResNet is chapter 1's run (the same network, recipe, seed and data): only
# the PyramidNet is new to the results ledger.
runs, trained = rn.train_and_record(built_from, data, config, record=[pyramid_name])

# %% tags=["nbval-ignore-output"]
rn.learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
final_loss = {name: f"{h.epochs[-1]['train_loss']:.3f}" for name, h in runs.items()}
print(rn.compare(runs, pyramid_name, resnet_name))
rn.results_table(runs, extra={"final train loss": final_loss})

# %% [markdown]
# The results ledger also holds this comparison for seeds 1 and 2, trained from
# the command line with the chapter's recipe (for example
# `python -m resnotes.train --model pyramidnet110_a48 --model-arg depth=32
# --model-arg alpha=45 --profile demo --seed 1 --ledger results`). Each seed
# draws its own initial weights, data order, augmentation and subset of
# CIFAR-10; the table puts them beside this run (seed 0), with the difference
# seed by seed.

# %% tags=["nbval-ignore-output"]
arms = {resnet_name: built_from[resnet_name], pyramid_name: built_from[pyramid_name]}
rn.across_seeds(rn.load_ledger(), arms, profile.name)

# %% [markdown]
# The time per epoch shows the FLOPs difference of the table above: at the
# same parameter count, PyramidNet's wider early units cost more compute per
# image, and in the committed `demo` run an epoch took about twice as long
# (40 s against 19 s on 2 CPU cores).
#
# **What the committed run shows.** PyramidNet-32 with $\alpha = 45$ ended
# with a lower training loss (1.30 against 1.41) and a higher test accuracy,
# 61.4% against 55.3% for ResNet-32 on the same 1,000 test images. Their 95%
# intervals, 58.3–64.4% and 52.2–58.4%, just overlap, but overlapping intervals
# do not make a difference noise: a two-proportion test puts the 6.1 points
# beyond the test set's sampling noise (p = 0.006), so these two trained
# networks would rank the same way on other test images. What one run cannot
# rule out is seed-to-seed variation: another seed draws other initial
# weights, another data order and another subset. The seeds table answers part
# of that: PyramidNet is ahead on all three seeds, by 6.1, 2.5 and 5.3 points
# (4.6 on average, with a spread of 1.9 between seeds), so at this scale the
# ranking holds, while the size of the gap moves by a few points from one seed
# to the next. It is also a run at depth 32 for 8 epochs, not the paper's
# 300-epoch schedule at depth 110.
#
# For reference, on full CIFAR-10 with the paper's 300-epoch schedule,
# PyramidNet-110 with $\alpha=48$ reaches 4.62% error (the official README; the
# mean in the paper's Table 4, which the survey's Table 5 quotes, is 4.58%)
# against 6.37% for pre-activation ResNet-110
# (He et al. 2016).
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
test_batches = rn.DeviceBatches(
    data.test_images, data.test_labels, 500, mean=data.mean, std=data.std, train=False
)
fig, ax = plt.subplots(figsize=(7.5, 3.6), constrained_layout=True)
summary = []
for name, model in trained.items():
    units = model.units()
    base_error = 1 - runs[name].test_acc
    errors = [1 - acc for acc in lesion_study(model, units, test_batches)]
    change = [100 * (e - base_error) for e in errors]
    ax.plot(range(1, len(units) + 1), change, marker="o", markersize=4, label=name)
    n = len(units) // 3
    downsampling = [n, 2 * n]  # 0-based indices of the first units of stages 2 and 3
    others = [c for i, c in enumerate(change) if i not in downsampling]
    summary.append(
        [
            name,
            f"{100 * base_error:.1f}%",
            f"{max(change[i] for i in downsampling):+.1f}",
            f"{max(others):+.1f}",
            f"{sum(change) / len(change):+.1f}",
        ]
    )
for index in downsampling:
    ax.axvline(index + 1, color="grey", lw=0.8, ls=":")
ax.set_xlabel("deleted unit (dotted: downsampling units)")
ax.set_ylabel("change in test error (points)")
hardware = runs[pyramid_name].meta["hardware"]
ax.set_title(
    f"Deleting one unit at a time, {data.name}, profile {profile.name!r}\n{hardware}"
)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
headers = [
    "network",
    "test error",
    "worst, downsampling",
    "worst, other",
    "mean change",
]
rn.Table(headers, summary, caption="Change in test error, in percentage points")

# %% [markdown]
# Under the `smoke` profile the networks have barely trained, and this figure
# says nothing. Under `demo` and `fast`, read it against the survey's claim:
# does deleting a downsampling unit cost the ResNet much more than the
# PyramidNet, and do the other units matter little for both?
#
# **What the committed run shows.** It does not support the survey's claim, at
# this scale. Deleting PyramidNet's first downsampling unit (unit 6) costs 27
# points of test accuracy, far from "barely hurts", although less than the
# ResNet's (39 points). Its second (unit 11) is where the claim holds: deleting
# it costs PyramidNet 3.5 points and the ResNet 36. In both networks some other
# unit costs even more (32 and 43 points), and on average a deleted unit costs both networks the same, about
# 14 points. Each of these changes is measured on 1,000 test images, so
# differences of a few points between them are noise. Two caveats: these
# networks have 15 units, not the paper's 54, so each unit does a larger share
# of the work, and they trained for 8 epochs, while the robustness to deletion
# that Veit et al. describe was measured on fully trained networks. Run the
# chapter under `fast` to test the claim at the paper's depth.
#
# **Summing up.** PyramidNet spreads the ResNet's width increases over every
# unit, by formula (2). It pads its shortcut with zeros rather than projecting
# it, and reorders the unit (no first ReLU, a final BN). At the same depth and
# parameter budget it is a drop-in replacement for the ResNet. The paper's
# full-schedule numbers above show what it gains.


# %% [markdown]
# ## Exercises
#
# Each problem gives its kind (*reason*, *compute*, *code* or *experiment*) and its
# difficulty (★ to ★★★). For a code or compute problem, fill in the cell, then
# uncomment its `check(...)` line: the check runs your answer on several cases and
# says what is wrong, if anything. Solutions are hidden below each problem.

# %%
from resnotes.exercises import check
from resnotes.models import count_parameters
from resnotes.models.pyramidnet import PyramidNet

# %% [markdown]
# **2.1 The multiplicative rule** (code, ★). Write `my_multiplicative_widths(num_units, alpha)`,
# the widths $D_1, \dots, D_N$ of the multiplicative PyramidNet,
# $D_k = D_{k-1}\cdot\alpha^{1/N}$ with $D_0 = 16$, rounded as the package rounds
# (read the section on formula (2) above). The first units of the
# multiplicative PyramidNet-110 with $\alpha = 4$ ($N = 54$) widen by less than one
# channel: which is the first unit wider than 16?


# %%
def my_multiplicative_widths(num_units, alpha): ...  # your code here


# check("pyramidnet.multiplicative_widths", my_multiplicative_widths)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# $D_k = 16\,\alpha^{k/N}$ for $k = 1, \dots, N$, each rounded half up,
# $\lfloor x + 0.5\rfloor$. The paper floors instead; with floors the widths of
# PyramidNet-110 ($\alpha = 4$) differ at 23 of the 54 units, and are lower there
# by one channel, while the last unit is 64 wide either way. Unit 1 is
# $16\cdot 4^{1/54} \approx 16.41$, rounded to 16: the first unit wider than 16 is
# unit 2 (17 channels).
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_multiplicative_widths(num_units, alpha):
#     return [
#         int(16 * alpha ** (k / num_units) + 0.5) for k in range(1, num_units + 1)
#     ]
#
# check("pyramidnet.multiplicative_widths", solution_multiplicative_widths)
# print("units 1-6:", solution_multiplicative_widths(54, 4)[:6])
# ```
#
# ```text
# ✓ pyramidnet.multiplicative_widths: correct on all 5 cases.
# units 1-6: [16, 17, 17, 18, 18, 19]
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_multiplicative_widths(num_units, alpha):
        return [
            int(16 * alpha ** (k / num_units) + 0.5) for k in range(1, num_units + 1)
        ]

    check("pyramidnet.multiplicative_widths", solution_multiplicative_widths)
    print("units 1-6:", solution_multiplicative_widths(54, 4)[:6])


# %% [markdown]
# **2.2 Parameters from the widths** (code, ★★). Write `my_params_from_widths(widths)`:
# the parameters of a basic PyramidNet (10 classes) whose $N$ units have the given
# widths. Print `PyramidBasicUnit(16, 18, 2)` to see a unit's layers. The shortcut
# (pooling and zero padding) has no parameters, and the stem is conv-BN.


# %%
def my_params_from_widths(widths): ...  # your code here


# check("pyramidnet.params_from_widths", my_params_from_widths)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# Stem: 3×3 conv from 3 to 16 channels (432) and a BN (32). Unit $k$ reads
# $D_{k-1}$ channels ($D_0 = 16$): $\mathrm{BN}(D_{k-1})$, 3×3 conv $D_{k-1}\to D_k$,
# $\mathrm{BN}(D_k)$, 3×3 conv $D_k\to D_k$, $\mathrm{BN}(D_k)$. Then the final BN,
# $2D_N$, and the classifier, $10D_N + 10$. The stride does not change a count.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_params_from_widths(widths):
#     total, previous = 27 * 16 + 2 * 16, 16  # stem: conv and BN
#     for width in widths:
#         total += (
#             2 * previous
#             + 9 * previous * width
#             + 2 * width
#             + 9 * width * width
#             + 2 * width
#         )
#         previous = width
#     return total + 2 * previous + 10 * previous + 10  # final BN and classifier
#
# check("pyramidnet.params_from_widths", solution_params_from_widths)
# ```
#
# ```text
# ✓ pyramidnet.params_from_widths: correct on all 4 cases.
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_params_from_widths(widths):
        total, previous = 27 * 16 + 2 * 16, 16  # stem: conv and BN
        for width in widths:
            total += (
                2 * previous
                + 9 * previous * width
                + 2 * width
                + 9 * width * width
                + 2 * width
            )
            previous = width
        return total + 2 * previous + 10 * previous + 10  # final BN and classifier

    check("pyramidnet.params_from_widths", solution_params_from_widths)


# %% [markdown]
# **2.3 Counting PyramidNet-110, multiplicative** (compute, ★). With your two
# functions, count the parameters of the multiplicative PyramidNet-110 with
# $\alpha = 4$, the network of the width figure above, which ends at 64 channels
# like the additive one with $\alpha = 48$. Compare with the additive network.

# %%
my_count = None  # your answer: a number

# check("pyramidnet.params", my_count, depth=110, alpha=4, widening="multiplicative")

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# 1,373,208 parameters, against 1,772,706 for the additive PyramidNet-110 with
# $\alpha = 48$: 399,498 fewer (22.5%), for the same first and last widths.
# With floored widths (the paper's formula) you would get 1,345,152.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# solution_count = solution_params_from_widths(solution_multiplicative_widths(54, 4))
# check(
#     "pyramidnet.params",
#     solution_count,
#     depth=110,
#     alpha=4,
#     widening="multiplicative",
# )
# print(
#     f"multiplicative, alpha=4: {solution_count:,}; additive, alpha=48: "
#     f"{count_parameters(PyramidNet(depth=110, alpha=48)):,}"
# )
# ```
#
# ```text
# ✓ pyramidnet.params: correct.
# multiplicative, alpha=4: 1,373,208; additive, alpha=48: 1,772,706
# ```
# </details>

# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it
    solution_count = solution_params_from_widths(solution_multiplicative_widths(54, 4))
    check(
        "pyramidnet.params",
        solution_count,
        depth=110,
        alpha=4,
        widening="multiplicative",
    )
    print(
        f"multiplicative, alpha=4: {solution_count:,}; additive, alpha=48: "
        f"{count_parameters(PyramidNet(depth=110, alpha=48)):,}"
    )


# %% [markdown]
# **2.4 Where the parameters sit** (compute and reason, ★★). Count the
# parameters of each of the three stages (the units only) for the additive
# ($\alpha = 48$) and the multiplicative ($\alpha = 4$) PyramidNet-110, for example
# with `sum(p.numel() for p in model.stages[i].parameters())`. Then find the
# multiplicative $\alpha$, to one decimal, whose network has about the parameters of
# the additive one, and compare again. Where does the multiplicative rule put its
# parameters, and why?
#
# <details>
# <summary>Solution</summary>
#
# | PyramidNet-110 | stage 1 | stage 2 | stage 3 | last width |
# |---|---|---|---|---|
# | additive, $\alpha = 48$ (1.77M) | 199,384 (11%) | 535,192 (30%) | 1,036,888 (59%) | 64 |
# | multiplicative, $\alpha = 4$ (1.37M) | 140,637 (10%) | 349,479 (25.5%) | 881,850 (64%) | 64 |
# | multiplicative, $\alpha = 4.8$ (1.79M) | 150,128 (8%) | 425,845 (24%) | 1,208,350 (68%) | 77 |
#
# $16\alpha^{k/N}$ is convex in $k$: with the same first and last width, the
# multiplicative widths stay at or below the additive straight line everywhere
# in between, so every stage has fewer parameters. A unit's parameters grow with the
# square of its width, so what the multiplicative network has sits late: 64% of it
# in stage 3, against 59%. At the same budget ($\alpha = 4.8$, 1.79M against 1.77M),
# the extra parameters of the multiplicative network all sit in stage 3 (+171k),
# paid for by stages 1 and 2 (−49k and −109k), and its last unit is 77 channels
# wide instead of 64. The additive rule spreads the widening evenly, and gives
# the early, high-resolution units more channels. PyramidNet's official README
# (jhkim89/PyramidNet) puts the
# additive rule ahead at 3.8M and 28.3M parameters; at 1.7M the multiplicative
# rule ($\alpha = 4.75$) draws level on CIFAR-10 (4.62% both) and is ahead on
# CIFAR-100 (23.16% against 23.31%).
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def stage_params(model):
#     return [sum(p.numel() for p in stage.parameters()) for stage in model.stages]
#
# for label, net in [
#     ("additive, alpha=48", PyramidNet(depth=110, alpha=48)),
#     (
#         "multiplicative, alpha=4",
#         PyramidNet(depth=110, alpha=4, widening="multiplicative"),
#     ),
#     (
#         "multiplicative, alpha=4.8",
#         PyramidNet(depth=110, alpha=4.8, widening="multiplicative"),
#     ),
# ]:
#     print(
#         f"{label:26s}",
#         [f"{p:,}" for p in stage_params(net)],
#         f"total {count_parameters(net):,}",
#     )
# ```
#
# ```text
# additive, alpha=48         ['199,384', '535,192', '1,036,888'] total 1,772,706
# multiplicative, alpha=4    ['140,637', '349,479', '881,850'] total 1,373,208
# multiplicative, alpha=4.8  ['150,128', '425,845', '1,208,350'] total 1,785,721
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def stage_params(model):
        return [sum(p.numel() for p in stage.parameters()) for stage in model.stages]

    for label, net in [
        ("additive, alpha=48", PyramidNet(depth=110, alpha=48)),
        (
            "multiplicative, alpha=4",
            PyramidNet(depth=110, alpha=4, widening="multiplicative"),
        ),
        (
            "multiplicative, alpha=4.8",
            PyramidNet(depth=110, alpha=4.8, widening="multiplicative"),
        ),
    ]:
        print(
            f"{label:26s}",
            [f"{p:,}" for p in stage_params(net)],
            f"total {count_parameters(net):,}",
        )


# %% [markdown]
# **2.5 Additive against multiplicative, trained** (experiment, ★★★). In the
# training section, replace the ResNet by a multiplicative PyramidNet of the same
# depth, with the $\alpha$ that matches the additive one's parameters (at the
# `demo` depth 32: additive $\alpha = 45$, 466,714 parameters for the ResNet;
# multiplicative $\alpha = 4.5$ gives 468,905). Compare training loss, validation
# and test accuracy, and time per epoch.
#
# - *What to look for.* PyramidNet's official README has the additive rule ahead at 3.8M
#   and 28.3M parameters, and level with or behind the multiplicative one at
#   1.7M, the size of these networks. The multiplicative network also has fewer
#   FLOPs (0.18 against
#   0.22 GFLOPs per image at depth 32), so it should be a little faster per epoch.
# - *Cost (estimates, not measured).* Under `demo` on a 2-core CPU, the chapter's
#   two runs trained for about 8 minutes (2.5 for the ResNet, 5.2 for the
#   PyramidNet, whose epochs are slower: the sums of their epoch times); a
#   multiplicative PyramidNet-32 run should take a little less than the additive
#   one, so about 10 minutes for the pair. Under
#   `fast` on a T4, assuming an effective 2 TFLOP/s: about 4 minutes per
#   run at depth 32, 11 to 14 at depth 110 (0.67 and 0.81 GFLOPs per image).
# - *Noise.* On `demo`'s 1,000 test images a single run's 95% (Wilson) interval is
#   about ±3 points near 50%, and the seed-to-seed spread is of the same order (the
#   table of three seeds in the training section). A difference of a point or two
#   between the two rules is not a result; under `fast` (10,000 test images,
#   about ±1 point) it starts to be one, for one seed.
#
# <details>
# <summary>What to expect</summary>
#
# Under `demo`, expect the two networks within the noise of each other: the
# difference the paper reports is below a point of error, on full CIFAR after 300
# epochs. The time per epoch should follow the FLOPs. Repeat with two more seeds
# before claiming an ordering.
#
# </details>


# %% tags=["nbval-ignore-output"]
print(rn.chapter_time())
