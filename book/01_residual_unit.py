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
# # 1. The pre-activation residual unit
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/01_residual_unit.ipynb)
#
# Every network in this book is built from one idea: let a stack of layers learn
# a *correction* to its input instead of a whole new representation. This
# chapter builds that idea up from the problem it solves, writes it down in the
# form the later chapters use (He et al.'s *pre-activation* unit), counts the
# parameters of the paper's networks live, and trains a residual network against
# a plain network of the same depth.
#
# The first code cell installs the package when the notebook runs in Colab;
# elsewhere it does nothing (from a checkout, install it with
# `pip install -e ".[lab]"`, as the README's "Run it on your laptop" says).

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the whole chapter took 6 minutes on 2 CPU
# > cores (measured; its last cell prints the time of the run shown here).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes==0.3.0"
    pass

# %% [markdown]
# Every number below comes from a run of this notebook, under a *profile* that
# says how much data and training it uses (see the [introduction](intro.md)).
# The next cell prints the profile, the hardware and the torch version; the
# committed outputs of this page were produced by exactly that run.

# %% tags=["nbval-ignore-output"]
import inspect

import matplotlib.pyplot as plt
import torch

import resnotes as rn
from resnotes.analysis import gradient_norms_per_unit
from resnotes.models.preact_resnet import (
    PreActBasicUnit,
    PreActResNet,
    PreActUnit,
    plain_net,
)

profile = rn.start_chapter()

# %% [markdown]
# ## The degradation problem
#
# Stacking more layers should never hurt *in principle*: a deeper network could
# copy a shallower one and set its extra layers to the identity. In practice,
# He et al. (2015) found the opposite. On CIFAR-10, a plain 56-layer network of
# 3×3 convolutions had higher **training** error than a 20-layer one. This is
# not overfitting, because the training error itself is worse. The optimiser
# simply fails to find the solution that the deeper network can represent: it is
# hard for a stack of nonlinear layers to learn the identity.
#
# ## Identity shortcuts
#
# The fix is to make the identity the default. A residual unit computes
#
# $$
# \mathbf{x}_{l+1} = \mathbf{x}_l + \mathcal{F}(\mathbf{x}_l, \mathcal{W}_l),
# $$
#
# so its layers only need to learn the residual $\mathcal{F}$. If the best thing
# to do is nothing, the weights of $\mathcal{F}$ go to zero, which is easy.
#
# ## Why pre-activation helps
#
# In the original unit a ReLU sits *after* the addition:
# $\mathbf{x}_{l+1} = \mathrm{ReLU}(\mathbf{x}_l + \mathcal{F}(\mathbf{x}_l))$.
# He et al. (2016) moved batch norm and ReLU *before* the convolutions
# (BN → ReLU → conv → BN → ReLU → conv), so that nothing at all sits on the
# shortcut path. Unrolling the recursion from any unit $l$ to any deeper unit
# $L$ then gives a sum:
#
# $$
# \mathbf{x}_L = \mathbf{x}_l + \sum_{i=l}^{L-1} \mathcal{F}(\mathbf{x}_i, \mathcal{W}_i),
# $$
#
# and, by the chain rule, the gradient of the loss $\mathcal{E}$:
#
# $$
# \frac{\partial \mathcal{E}}{\partial \mathbf{x}_l}
# = \frac{\partial \mathcal{E}}{\partial \mathbf{x}_L}
#   \Bigl(1 + \frac{\partial}{\partial \mathbf{x}_l} \sum_{i=l}^{L-1} \mathcal{F}(\mathbf{x}_i, \mathcal{W}_i)\Bigr).
# $$
#
# The "1" is the point: the gradient at the top reaches every unit directly,
# whatever the weights are, instead of through a product of $L-l$ layer
# Jacobians that can vanish or explode. This is what let the paper train a
# 1001-layer network and improve on the original ResNets.
#
# Here is the unit as the package implements it. The chapter imports it rather
# than redefining it, so the text you read is the code that runs. What every
# pre-activation unit shares is in one class, whose `forward` is the equation
# above: pre-activate, compute the rest of $\mathcal{F}$, add the shortcut.

# %%
print(inspect.getsource(PreActUnit))

# %% [markdown]
# The shortcut is the identity, except where a unit changes the shape of its
# input: there it becomes a 1×1 convolution, a *projection*. That is the first
# unit of stages 2 and 3, which halves the resolution and doubles the width (a
# strided projection), and, in the bottleneck networks, also the very first unit,
# which widens the stem's 16 channels to 64 at full resolution. The first
# unit of each stage follows the official code (`preresnet.lua` in
# fb.resnet.torch): its BN-ReLU comes before the split, so its shortcut,
# identity or projection, reads the activated input. The paper's appendix says
# the same of the network's first unit, whose input is the stem's convolution.
# In every other unit the shortcut carries $\mathbf{x}_l$ untouched, which is
# what the unrolled sum above needs. A basic unit then only builds the rest of
# $\mathcal{F}$, two 3×3 convolutions, and applies them in `branch`:

# %%
print(inspect.getsource(PreActBasicUnit))

# %% [markdown]
# The bottleneck unit used for ResNet-164 and ResNet-1001
# (`PreActBottleneckUnit`) replaces the two 3×3 convolutions by 1×1 (reduce)
# → 3×3 → 1×1 (expand ×4).
#
# One property we can check directly: when the residual branch outputs zero,
# the unit passes its input through *exactly*, because nothing follows the
# addition.

# %%
torch.manual_seed(0)
unit = PreActBasicUnit(in_channels=16, width=16)
torch.nn.init.zeros_(unit.conv2.weight)  # make F(x) = 0
x = torch.randn(2, 16, 32, 32)
print("unit(x) equals x exactly:", torch.equal(unit(x), x))

# %% [markdown]
# ## The CIFAR network, step by step
#
# The CIFAR networks have a 3×3 stem with 16 channels, then three stages of
# $n$ units at 32×32, 16×16 and 8×8 with 16, 32 and 64 channels (×4 at the
# output of a bottleneck unit), then BN-ReLU, global average pooling and a
# linear classifier. Counting the stem and the classifier, a network of basic
# units has $6n+2$ layers and a network of bottleneck units $9n+2$. Here are
# the shapes as a batch flows through ResNet-20 ($n=3$):

# %%
model = PreActResNet(depth=20)
x = torch.randn(8, 3, 32, 32)
rows = [("input", tuple(x.shape))]
x = model.stem(x)
rows.append(("stem", tuple(x.shape)))
for index, stage in enumerate(model.stages, start=1):
    x = stage(x)
    rows.append((f"stage {index} ({len(stage)} units)", tuple(x.shape)))
x = torch.relu(model.bn(x)).mean((2, 3))
rows.append(("BN-ReLU, global average pool", tuple(x.shape)))
rows.append(("fc", tuple(model.fc(x).shape)))
rn.Table(["step", "shape (B, C, H, W)"], rows)

# %% [markdown]
# A depth that does not fit the rule is refused with the rule in the message:

# %%
try:
    PreActResNet(depth=100)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## The paper's networks, counted live
#
# The table counts the parameters of our implementation of each network the
# paper reports on CIFAR, beside the figure printed in the paper (He et al.
# 2016, Table 4), and the forward FLOPs for one 32×32 image (a
# multiply-add counts as two) from `torch.utils.flop_counter`.


# %%
networks = ["preact_resnet110", "preact_resnet164", "preact_resnet1001"]
rn.paper_table(networks)

# %% [markdown]
# The gaps are small, and they come from how the paper counts and rounds, not
# from the architecture. The paper prints one decimal, so 1.7M stands for
# anything from 1.65M to 1.75M. And its counts seem to leave out batch
# normalisation's scale and shift: ResNet-1001's batch norms hold 149,216
# parameters, and without them our count is 10,178,490, which rounds to the
# paper's 10.2M; with them it is 1.47% more (1.25% above the paper's 10.2M, the
# "+1.3%" of the table). The projection shortcuts are a
# small part of any of these counts: 2,560 parameters in ResNet-110 and
# 41,984 in the two bottleneck networks.
#
# ## Why depth needs shortcuts: gradients at initialisation
#
# Before training anything, we can already see the difference the identity
# path makes. The next cell builds plain and residual networks of several
# depths and runs one forward and backward pass on a batch of real CIFAR-10
# training images. It records the norm of the gradient of the loss with respect
# to the output of every unit. First, the data: the profile fixes the subset,
# and the line below says which copy of CIFAR-10 was found.

# %% tags=["nbval-ignore-output"]
data = rn.load_cifar("cifar10", **profile.data_kwargs())
print(data)

# %% tags=["nbval-ignore-output"]
batches = rn.DeviceBatches(
    data.train_images, data.train_labels, 64, mean=data.mean, std=data.std, train=False
)
images, labels = next(iter(batches))
print("gradient norm at the first unit / at the last unit")
fig, axes = plt.subplots(1, 2, sharey=True, constrained_layout=True)
kinds = [("plain", plain_net), ("residual (pre-activation)", PreActResNet)]
for ax, (kind, build) in zip(axes, kinds):
    for depth in (20, 56, 110):
        torch.manual_seed(0)
        net = build(depth=depth)
        norms = gradient_norms_per_unit(net, net.units(), images, labels)
        ax.semilogy(range(1, len(norms) + 1), norms, label=f"depth {depth}")
        print(f"  {kind:26s} depth {depth:3d}: {norms[0] / norms[-1]:,.1f}")
    ax.set_title(f"{kind} network")
    ax.set_xlabel("unit index $l$ (input side on the left)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
axes[0].set_ylabel(r"$\|\partial \mathcal{E} / \partial \mathbf{x}_{l}\|$")
fig.suptitle(f"Gradient norms at initialisation, one batch of 64 {data.name} images")
plt.show()

# %% [markdown]
# In the plain networks (left), the gradient is multiplied by one layer
# Jacobian after another on its way down. With batch norm in every layer it
# *grows* towards the input, and the growth compounds with depth: in the
# committed run the ratio between the first and the last unit is 17 at depth
# 20 and 17 million at depth 110. No single learning rate suits both ends of
# such a network. In the residual networks (right), the gradient still grows
# towards the input, but by a factor of 8 at depth 20 and 165 at depth 110:
# five orders of magnitude less. The identity path hands every unit the
# gradient from the top unchanged, and the residual branches only add to it.
# (The jumps are at the stage boundaries, where a projection shortcut halves
# the resolution.)
#
# ## Training: plain against residual, same depth
#
# Now the experiment that started it all, at the depth the profile allows. Both
# networks have the same layers and (up to the two projection shortcuts) the
# same parameters; the only difference is the identity shortcut. Both train
# with the same seed, data order, schedule and augmentation (4-pixel padded
# random crops and horizontal flips, applied to whole batches on the device).
# The model kept is the one with the best accuracy on a validation split held
# out from the training set; the test set is used once, at the end.

# %% tags=["nbval-ignore-output"]
depth = profile.pick(smoke=8, demo=32, fast=56, paper=110)
config = rn.make_config("preact_resnet110", profile)
arms = {  # each run's name: the registered network and its arguments
    f"plain-{depth}": ("plain20", {"depth": depth}),
    f"ResNet-{depth}": ("preact_resnet20", {"depth": depth}),
}
# The same seed, data order, schedule and augmentation for both; both runs join
# the results ledger.
runs, trained = rn.train_and_record(arms, data, config)

# %% tags=["nbval-ignore-output"]
rn.learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
final_loss = {name: f"{h.epochs[-1]['train_loss']:.3f}" for name, h in runs.items()}
print(rn.compare(runs, f"ResNet-{depth}", f"plain-{depth}"))
rn.results_table(runs, extra={"final train loss": final_loss})

# %% [markdown]
# The table's time per epoch is the median over the epochs after the first (here
# epochs 2 to 8), because the first also pays for start-up; every chapter's table
# and the results ledger use the same rule.
#
# One run is one draw: of the initial weights, the data order, the augmentation
# and, under `demo`, the subset of CIFAR-10. The results ledger also holds this
# comparison for seeds 1 and 2, trained from the command line with the chapter's
# recipe, for example
# `python -m resnotes.train --model plain20 --model-arg depth=32 --profile demo
# --seed 1 --ledger results`. The table puts them beside this chapter's run
# (seed 0), with the difference seed by seed.

# %% tags=["nbval-ignore-output"]
rn.across_seeds(rn.load_ledger(), arms, profile.name)

# %% [markdown]
# How to read this result depends on the profile that produced it (the caption
# says which). Under `smoke` it only proves that the code runs. Under `demo`
# (a subset of CIFAR-10, a few epochs, a reduced depth on a CPU) and `fast`
# (full CIFAR-10, a short schedule, on a GPU), look first at the *training*
# loss: degradation is an optimisation problem, so the residual network
# should reach a lower training loss than its plain twin in the same number of
# steps. None of these runs is the paper's experiment: the paper's test
# errors are in the table of the paper's networks above (He et al. 2016,
# Tables 3 and 4: the median of 5 runs, with the full schedule of 64k
# iterations at batch 128 on all 50,000 training images).
#
# **What the committed run shows.** It is a `demo` run: ResNet-32 and plain-32
# on 4,500 CIFAR-10 training images for 8 epochs, on a CPU, one seed. The
# residual network ends with a training loss of 1.41 against 1.85 for its plain
# twin, and its training loss is lower in every epoch: the identity
# shortcuts make the same layers easier to optimise, as the degradation
# argument predicts. The test accuracies, 55.3% against 39.7% on 1,000 test
# images, differ by 15.6 points, far more than their 95% intervals (about ±3
# points each), so this difference is not the test set's noise. The seeds table
# adds what one run cannot: on seeds 1 and 2 the gap is 22.2 and 19.0 points,
# so the residual network wins on all three seeds, by 18.9 points on average
# with a spread (standard deviation) of 3.3 points between seeds. Three seeds
# settle the sign of the gap at this scale, not its size to within a few
# points. It is still a short schedule at depth 32, where the paper's plain
# networks only begin to degrade; how large the gap is at the paper's scale
# these runs cannot say.
#
# To reproduce one of them, train under the `paper` profile, for example
# `python -m resnotes.train --model preact_resnet164 --profile paper`
# (a GPU is needed: at about 60 images per second on a 2-core CPU, one epoch
# of ResNet-110 on 45,000 images takes about 12.5 minutes).
#
# **Summing up.** A residual unit adds a learned correction to an identity
# path. Moving BN and ReLU in front of the convolutions leaves that path
# clean, so signals and gradients travel between any two units directly. Every
# later chapter starts from this unit and changes one thing. PyramidNet widens
# it gradually, DenseNet concatenates instead of adding, the Residual Attention
# Network multiplies the trunk by a mask, and Stochastic Depth drops whole
# units while training.


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
from resnotes.models.preact_resnet import PreActResNet

# %% [markdown]
# **1.1 Units per stage** (compute, ★). A CIFAR ResNet has a stem convolution,
# three stages of $n$ units and a classifier. Write `my_units_per_stage(depth, bottleneck)`,
# which returns $n$ for a network of `depth` layers, with basic units (2 convolutions)
# or bottleneck units (3). How many units does ResNet-1001 have in all?


# %%
def my_units_per_stage(depth, bottleneck): ...  # your code here


# check("resnet.units_per_stage", my_units_per_stage)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# Every unit contributes 2 (basic) or 3 (bottleneck) layers, in 3 stages, and the
# stem and the classifier add 2: depth $= 6n+2$ or $9n+2$. So
# $n = (\text{depth}-2)/6$ or $(\text{depth}-2)/9$. ResNet-1001 has bottleneck units,
# $n = 111$, so $3n = 333$ units. The package's version also refuses depths that
# break the rule.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_units_per_stage(depth, bottleneck):
#     return (depth - 2) // (9 if bottleneck else 6)
#
# check("resnet.units_per_stage", solution_units_per_stage)
# print("ResNet-1001:", 3 * solution_units_per_stage(1001, True), "units")
# ```
#
# ```text
# ✓ resnet.units_per_stage: correct on all 6 cases.
# ResNet-1001: 333 units
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_units_per_stage(depth, bottleneck):
        return (depth - 2) // (9 if bottleneck else 6)

    check("resnet.units_per_stage", solution_units_per_stage)
    print("ResNet-1001:", 3 * solution_units_per_stage(1001, True), "units")


# %% [markdown]
# **1.2 Parameters of one unit** (code, ★★). Write `my_unit_params(in_channels, width, stride, bottleneck)`:
# the number of trainable parameters of one pre-activation unit as the package
# builds it (print `PreActBasicUnit(16, 32, 2)` to see its layers). A $k\times k$
# convolution from $a$ to $b$ channels without bias has $abk^2$ weights; a batch norm
# has 2 trainable parameters per channel. Then compare a basic unit reading 64
# channels at width 64 with a bottleneck unit reading 256 channels at width 64
# (both output as many channels as they read).


# %%
def my_unit_params(in_channels, width, stride, bottleneck): ...  # your code here


# check("resnet.unit_params", my_unit_params)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# Basic unit: $\mathrm{BN}(c_\text{in})$, conv 3×3 $c_\text{in}\to w$, $\mathrm{BN}(w)$, conv 3×3
# $w\to w$. Bottleneck: $\mathrm{BN}(c_\text{in})$, conv 1×1 $c_\text{in}\to w$, $\mathrm{BN}(w)$, conv 3×3
# $w\to w$, $\mathrm{BN}(w)$, conv 1×1 $w\to 4w$. Where the stride is 2 or the input and
# output channels differ, the shortcut is a 1×1 convolution from $c_\text{in}$ to the
# output channels. The running mean and variance of a batch norm are buffers, not
# parameters.
#
# The basic unit at 64 channels has 73,984 parameters; the bottleneck unit that
# reads and writes 256 channels has 70,400. For about the same parameters the
# bottleneck unit carries four times the channels on its shortcut, which is why
# ResNet-164 (bottleneck) and ResNet-110 (basic) both have about 1.7M parameters.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_unit_params(in_channels, width, stride, bottleneck):
#     if bottleneck:
#         out = 4 * width
#         convs = in_channels * width + 9 * width * width + width * out
#         bns = 2 * (in_channels + width + width)
#     else:
#         out = width
#         convs = 9 * in_channels * width + 9 * width * width
#         bns = 2 * (in_channels + width)
#     projection = in_channels * out if (stride != 1 or in_channels != out) else 0
#     return convs + bns + projection
#
# check("resnet.unit_params", solution_unit_params)
# print(
#     "basic, 64 -> 64:",
#     f"{solution_unit_params(64, 64, 1, False):,}",
#     "| bottleneck, 256 -> 256:",
#     f"{solution_unit_params(256, 64, 1, True):,}",
# )
# ```
#
# ```text
# ✓ resnet.unit_params: correct on all 6 cases.
# basic, 64 -> 64: 73,984 | bottleneck, 256 -> 256: 70,400
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_unit_params(in_channels, width, stride, bottleneck):
        if bottleneck:
            out = 4 * width
            convs = in_channels * width + 9 * width * width + width * out
            bns = 2 * (in_channels + width + width)
        else:
            out = width
            convs = 9 * in_channels * width + 9 * width * width
            bns = 2 * (in_channels + width)
        projection = in_channels * out if (stride != 1 or in_channels != out) else 0
        return convs + bns + projection

    check("resnet.unit_params", solution_unit_params)
    print(
        "basic, 64 -> 64:",
        f"{solution_unit_params(64, 64, 1, False):,}",
        "| bottleneck, 256 -> 256:",
        f"{solution_unit_params(256, 64, 1, True):,}",
    )


# %% [markdown]
# **1.3 The whole network** (code, ★★). Using your unit count, write
# `my_resnet_params(depth, bottleneck)` for the CIFAR network of this chapter,
# and compare your count for ResNet-110 with the table above. Remember what
# sits outside the units.


# %%
def my_resnet_params(depth, bottleneck): ...  # your code here


# check("resnet.params", my_resnet_params)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# Stem: a 3×3 convolution from 3 to 16 channels, 432 parameters. Then the units,
# stage by stage: the input of the first unit is 16 channels, and the first unit
# of stages 2 and 3 has stride 2. Then the final BN (2 per channel) and the
# classifier (64 × 10 weights + 10 biases for basic units, 256 × 10 + 10 for
# bottleneck units). ResNet-110: 432 + 1,729,312 (units) + 128 + 650 = 1,730,522,
# the count in the table above; 2,560 of the units' parameters are the two projection
# shortcuts.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_resnet_params(depth, bottleneck):
#     n = solution_units_per_stage(depth, bottleneck)
#     total, channels = 3 * 9 * 16, 16  # the stem
#     for index, width in enumerate((16, 32, 64)):
#         for position in range(n):
#             stride = 2 if index > 0 and position == 0 else 1
#             total += solution_unit_params(channels, width, stride, bottleneck)
#             channels = width * (4 if bottleneck else 1)
#     return total + 2 * channels + 10 * channels + 10  # final BN and classifier
#
# check("resnet.params", solution_resnet_params)
# print(
#     "ResNet-110:",
#     f"{solution_resnet_params(110, False):,}",
#     "| the model:",
#     f"{count_parameters(PreActResNet(depth=110)):,}",
# )
# ```
#
# ```text
# ✓ resnet.params: correct on all 5 cases.
# ResNet-110: 1,730,522 | the model: 1,730,522
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_resnet_params(depth, bottleneck):
        n = solution_units_per_stage(depth, bottleneck)
        total, channels = 3 * 9 * 16, 16  # the stem
        for index, width in enumerate((16, 32, 64)):
            for position in range(n):
                stride = 2 if index > 0 and position == 0 else 1
                total += solution_unit_params(channels, width, stride, bottleneck)
                channels = width * (4 if bottleneck else 1)
        return total + 2 * channels + 10 * channels + 10  # final BN and classifier

    check("resnet.params", solution_resnet_params)
    print(
        "ResNet-110:",
        f"{solution_resnet_params(110, False):,}",
        "| the model:",
        f"{count_parameters(PreActResNet(depth=110)):,}",
    )


# %% [markdown]
# **1.4 Why the "1" matters** (reason, ★★). Suppose every shortcut of ResNet-110
# multiplied its input by a constant $\lambda$: $\mathbf{x}_{l+1} = \lambda\mathbf{x}_l + \mathcal{F}(\mathbf{x}_l)$.
# Unroll the recursion from unit 1 to the output of the last unit, $L = 54$ units later. What factor
# replaces the "1" in the gradient formula? Evaluate it for $\lambda = 0.9$ and
# $\lambda = 1.1$, and say what it does to training.
#
# <details>
# <summary>Solution</summary>
#
# Unrolling gives $\mathbf{x}_L = \lambda^{L-l}\mathbf{x}_l + \sum_i \lambda^{L-1-i}\mathcal{F}(\mathbf{x}_i)$,
# so the direct term of $\partial\mathcal{E}/\partial\mathbf{x}_l$ is
# $\lambda^{L-l}\,\partial\mathcal{E}/\partial\mathbf{x}_L$ instead of $1\cdot\partial\mathcal{E}/\partial\mathbf{x}_L$.
# Over the 54 units of ResNet-110, $0.9^{54} \approx 0.0034$ and $1.1^{54} \approx 172$:
# the shortcut alone would shrink the gradient reaching the first unit about 300-fold,
# or blow it up 170-fold, and the residual branches would have to make up for it. This
# is the same product of factors that makes the plain networks of the gradient figure
# hard to train. Only $\lambda = 1$ passes the gradient unchanged whatever the depth,
# which is what He et al. (2016) found when they tried scaled shortcuts: they trained
# worse.
#
# </details>

# %% [markdown]
# **1.5 Degradation against depth** (experiment, ★★★). Run the training section
# twice more, with `depth = 20` and `depth = 56` instead of the profile's depth, and
# plot the final training loss of the plain and the residual network against depth.
#
# - *What to look for.* Degradation is an optimisation problem: the gap in
#   *training* loss between the plain network and the residual one should widen
#   with depth. Test accuracy is the noisier signal.
# - *Cost (estimates, not measured).* Under `demo` on a 2-core CPU this chapter's
#   two depth-32 runs trained for about 5.2 minutes (the sums of their epoch
#   times: 2.7 for plain-32, 2.5 for ResNet-32). Scaling by FLOPs (0.08, 0.14 and
#   0.25 GFLOPs per image at depths 20, 32 and 56), the two depth-20 runs take
#   about 3 minutes and the two depth-56 runs about 9. Under
#   `fast` on a T4 GPU, assuming an effective 2 TFLOP/s, one depth-56 run takes
#   about 4 minutes and one depth-20 run under 2.
# - *Noise.* On the 1,000 test images of `demo`, one run's 95% (Wilson) interval
#   is about ±3 points near 50% accuracy, and the table of three seeds above
#   shows how far a network's test accuracy moves from one seed to the next.
#   Trust a loss gap that has the same sign on two or three seeds, not a single
#   run.
#
# <details>
# <summary>What to expect</summary>
#
# At depth 20 the two networks should end close together, with the residual one a
# little lower in training loss. At depth 56 the plain network should lag clearly
# in training loss, as in the chapter's gradient figure, where the plain network's
# gradients spread over orders of magnitude between its first and last units. If
# the ordering flips at one depth on one seed, rerun that depth with another seed
# before concluding anything.
#
# </details>


# %% tags=["nbval-ignore-output"]
print(rn.chapter_time())
