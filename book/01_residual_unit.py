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
# elsewhere it does nothing (from a checkout, install with `pip install -e ".[lab]"`:
# see the README's Set-up).

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the training runs below took about 11 minutes
# > on 2 CPU cores (measured; the other cells were not timed).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes @ git+https://github.com/resnotes/resnotes@v0.2.0"
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

from resnotes.analysis import gradient_norms_per_unit
from resnotes.data import DeviceBatches, load_cifar
from resnotes.models import count_flops, count_parameters, get_spec
from resnotes.models.preact_resnet import PreActBasicUnit, PreActUnit, plain_net, preact_resnet
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile
from resnotes.report import Table, banner
from resnotes.train import fit

profile = get_profile()
print(banner(profile))

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
# \qquad
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
# than redefining it, so the text you read is the code that runs.

# %%
print(inspect.getsource(PreActBasicUnit))

# %% [markdown]
# The `forward` reads like the equations: pre-activate, two convolutions, add.
# Where a unit halves the resolution and doubles the width, the shortcut cannot
# be the identity. It becomes a strided 1×1 convolution of the pre-activated
# input, as in the official code. Both kinds of unit inherit that shortcut:

# %%
print(inspect.getsource(PreActUnit))

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
model = preact_resnet(depth=20)
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
Table(["step", "shape (B, C, H, W)"], rows)

# %% [markdown]
# A depth that does not fit the rule is refused with the rule in the message:

# %%
try:
    preact_resnet(depth=100)
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
rows = []
for name in ["preact_resnet110", "preact_resnet164", "preact_resnet1001"]:
    spec = get_spec(name)
    model = spec.build()
    ours = count_parameters(model)
    gap = (ours - spec.paper_params) / spec.paper_params
    rows.append([name, f"{ours:,}", f"{spec.paper_params / 1e6:.1f}M", f"{gap:+.1%}", f"{count_flops(model) / 1e9:.2f}"])
Table(["model", "our parameters", "paper", "gap", "GFLOPs / image"], rows)

# %% [markdown]
# The small gaps have two sources. The paper rounds to one decimal. And where
# the width changes we use the official code's 1×1 projection shortcut, which
# adds a few thousand parameters (2,560 in ResNet-110; more in the bottleneck
# networks, whose first projection widens 16 channels to 64). The paper's text
# does not fix that choice for every network; we follow the code and say so
# here rather than bend the architecture towards a rounded number.
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
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())

# %% tags=["nbval-ignore-output"]
images, labels = next(iter(DeviceBatches(data.train_images, data.train_labels, 64, mean=data.mean, std=data.std, train=False)))
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True, constrained_layout=True)
for ax, (kind, build) in zip(axes, [("plain", plain_net), ("residual (pre-activation)", preact_resnet)]):
    for depth in (20, 56, 110):
        torch.manual_seed(0)
        net = build(depth=depth)
        norms = gradient_norms_per_unit(net, net.units(), images, labels)
        ax.semilogy(range(1, len(norms) + 1), norms, label=f"depth {depth}")
        print(f"{kind:26s} depth {depth:3d}: gradient norm at the first unit / at the last unit = {norms[0] / norms[-1]:,.1f}")
    ax.set_title(f"{kind} network")
    ax.set_xlabel("unit index $l$ (input side on the left)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
axes[0].set_ylabel(r"$\|\partial \mathcal{E} / \partial \mathbf{x}_{l}\|$")
fig.suptitle(f"Gradient norms at initialisation, one batch of 64 {data.name} images", fontsize=10)
plt.show()

# %% [markdown]
# In the plain networks (left), the gradient is multiplied by one layer
# Jacobian after another on its way down. With batch norm in every layer it
# *grows* towards the input, and the growth compounds with depth: the printed
# ratios between the first and the last unit run to many orders of magnitude
# at depth 110. No single learning rate suits both ends of such a network. In
# the residual networks (right), the gradient still grows towards the input,
# but gently, and the three depths stay close together. The identity path
# hands every unit the gradient from the top unchanged, and the residual
# branches only add to it. (The jumps are at the stage boundaries, where a
# projection shortcut halves the resolution.)
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
runs = {}
for name, build in [(f"plain-{depth}", plain_net), (f"ResNet-{depth}", preact_resnet)]:
    torch.manual_seed(0)
    runs[name] = fit(build(depth=depth), data, profile.train_config(), name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
rows = [
    [name, f"{h.meta['params']:,}", f"{h.epochs[-1]['train_loss']:.3f}", f"{h.best_val_acc:.2%}", f"{h.test_acc:.2%}", f"{h.seconds:.0f} s"]
    for name, h in runs.items()
]
first = next(iter(runs.values()))
caption = f"{first.meta['dataset']}, {first.meta['data_source']}; profile {profile.name!r}, {first.config['epochs']} epochs, seed {first.config['seed']}; {first.meta['hardware']}"
Table(["network", "parameters", "final train loss", "best val accuracy", "test accuracy", "time"], rows, caption=caption)

# %% [markdown]
# How to read this result depends on the profile that produced it (the caption
# says which). Under `smoke` it only proves that the code runs. Under `demo`
# (a subset of CIFAR-10, a few epochs, a reduced depth on a CPU) and `fast`
# (full CIFAR-10, a short schedule, on a GPU), look first at the *training*
# loss: degradation is an optimisation problem, so the residual network
# should reach a lower training loss than its plain twin in the same number of
# steps. None of these runs is the paper's experiment. For reference, the
# paper reports these test errors (He et al. 2016, Tables 3 and 4: the median
# of 5 runs, with the full schedule of 64k iterations at batch 128 on all
# 50,000 training images):
#
# | network (He et al. 2016) | CIFAR-10 error | CIFAR-100 error |
# |---|---|---|
# | pre-activation ResNet-110 | 6.37% | – |
# | pre-activation ResNet-164 | 5.46% | 24.33% |
# | pre-activation ResNet-1001 | 4.92% | 22.71% |
#
# To reproduce one of them, train under the `paper` profile, for example
# `python -m resnotes.train --model preact_resnet164 --profile paper`
# (a GPU is needed: about 60 images per second on a 2-core CPU makes one
# epoch of ResNet-110 take some 15 minutes).
#
# **Summing up.** A residual unit adds a learned correction to an identity
# path. Moving BN and ReLU in front of the convolutions leaves that path
# clean, so signals and gradients travel between any two units directly. Every
# later chapter starts from this unit and changes one thing. PyramidNet widens
# it gradually, DenseNet concatenates instead of adding, the Residual Attention
# Network multiplies the trunk by a mask, and Stochastic Depth drops whole
# units while training.
