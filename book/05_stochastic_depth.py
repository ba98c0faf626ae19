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
# # 5. Stochastic Depth: train shallow, test deep
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/05_stochastic_depth.ipynb)
#
# A very deep ResNet is slow to train, and its gradients must still pass
# through every block. Huang, Sun, Liu, Sedra and Weinberger ("Deep Networks
# with Stochastic Depth", ECCV 2016) proposed to train it as a *short* network
# and test it as a deep one. For each mini-batch, every residual block
# survives with some probability and is otherwise skipped: its output is its
# shortcut alone. At test time all blocks run. This chapter reproduces the
# survey's section 3.5. We implement the method as the paper and its official
# code do, measure how much training time it saves, compare it with the
# constant-depth network, and look at the trained network as an ensemble.

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

# %% tags=["nbval-ignore-output"]
import inspect
import time

import matplotlib.pyplot as plt
import torch
import torchvision
from IPython.display import display

from resnotes.analysis import lesion_study
from resnotes.data import DeviceBatches, load_cifar
from resnotes.models import count_parameters, get_spec
from resnotes.models.stochastic_depth import StochasticDepthBlock, resnet_stochastic_depth, stochastic_depth_rescaled
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile, paper_recipe
from resnotes.report import Table, banner
from resnotes.runtime import hardware_description
from resnotes.train import fit

profile = get_profile()
print(banner(profile))

# %% [markdown]
# ## Survival probabilities
#
# Let the network have $L$ residual blocks, and let $b_l \in \{0, 1\}$ be a
# Bernoulli gate, drawn once per mini-batch, with survival probability $p_l$.
# Block $l$ computes
#
# $$
# H_l = \mathrm{ReLU}\bigl(b_l \, f_l(H_{l-1}) + \mathrm{id}(H_{l-1})\bigr)
# \quad\text{while training,}\qquad
# H_l = \mathrm{ReLU}\bigl(p_l \, f_l(H_{l-1}) + \mathrm{id}(H_{l-1})\bigr)
# \quad\text{at test time.}
# $$
#
# The early blocks extract low-level features that everything after them
# uses, so they should be dropped rarely. The paper's *linear decay* rule
# gives
#
# $$
# p_l = 1 - \frac{l}{L}\,(1 - p_L),
# $$
#
# from nearly 1 for the first block down to $p_L = 0.5$ for the last. The
# figure reads the probabilities off the real ResNet-110 models, for the linear
# rule and for the uniform rule $p_l = p_L$ that the paper compares it with.

# %%
linear = resnet_stochastic_depth(depth=110, final_survival=0.5)
uniform = resnet_stochastic_depth(depth=110, final_survival=0.5, survival_rule="uniform")
fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
for label, model in [("linear decay, $p_L = 0.5$", linear), ("uniform, $p_l = 0.5$", uniform)]:
    ax.plot(range(1, 55), model.survival_probs, marker=".", label=label)
ax.set_xlabel("block $l$")
ax.set_ylabel("survival probability $p_l$")
ax.set_ylim(0, 1.05)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
for label, model in [("linear", linear), ("uniform", uniform)]:
    expected = sum(model.survival_probs)
    print(f"{label:8s} rule: expected number of active blocks per mini-batch = {expected:.2f} of 54 ({expected / 54:.0%})")

# %% [markdown]
# With the linear rule, a mini-batch passes through about three quarters of
# the blocks on average. The blocks it skips are never computed, forward or
# backward. That is where the paper's speed-up comes from: 60 s instead of
# 75 s per epoch for ResNet-110, so the constant-depth network takes 25% longer
# (stochastic depth needs 20% less time). This is the block as the package
# implements it:

# %%
print(inspect.getsource(StochasticDepthBlock.forward))

# %% [markdown]
# ## Two methods under one name
#
# The *stochastic depth* in most libraries is not quite this method.
# `torchvision.ops.stochastic_depth` and timm's `DropPath` always compute the
# branch. They then zero it, per sample (`mode="row"`) or for the whole batch
# (`mode="batch"`), and divide the survivors by $p_l$ *during training*, so
# that the test-time network needs no scaling. (This is the "inverted dropout"
# convention, and the reason for the division by `keep_prob` that users ask
# about.) The two methods have the same expected output, but only the faithful
# one saves time.
#
# | | Huang et al. (faithful, our default) | common variant (`mode="row"` / `"batch"`) |
# |---|---|---|
# | gate | one per block per mini-batch | one per block per sample, or per batch |
# | dropped branch | not computed | computed, then multiplied by zero |
# | scaling | branch × $p_l$ at test time | branch ÷ $p_l$ while training |
# | training time | shorter | unchanged |
#
# The package offers both (`mode=`). Our rescaled helper is exactly
# torchvision's operation: from the same random state they give the same
# tensor.

# %%
branch = torch.randn(8, 4, 2, 2)
for mode in ("row", "batch"):
    torch.manual_seed(0)
    ours = stochastic_depth_rescaled(branch, survival_prob=0.8, mode=mode, training=True)
    torch.manual_seed(0)
    theirs = torchvision.ops.stochastic_depth(branch, p=0.2, mode=mode, training=True)
    print(f"mode={mode!r}: equal to torchvision.ops.stochastic_depth: {torch.allclose(ours, theirs)}")

# %% [markdown]
# ## The network, counted live
#
# The network is the original CIFAR ResNet of He et al. (2015), as in the
# official code. Its blocks are post-activation (conv-BN-ReLU-conv-BN, add,
# ReLU), not the pre-activation units of Chapter 1. Its parameter-free
# shortcut subsamples by 2 and zero-pads the new channels where the shape
# changes. Stochastic depth adds no parameters.

# %%
rows = []
for name in ["resnet110", "resnet110_stochastic_depth", "resnet1202_stochastic_depth"]:
    spec = get_spec(name)
    ours = count_parameters(spec.build())
    rows.append([name, f"{ours:,}", f"{spec.paper_params / 1e6:.1f}M", f"{(ours - spec.paper_params) / spec.paper_params:+.1%}"])
Table(["model", "our parameters", "paper", "gap"], rows)

# %% [markdown]
# ## Training: stochastic against constant depth
#
# We train the same network twice: with constant depth, and with stochastic
# depth ($p_L = 0.5$, linear decay). The seed, data, schedule and machine are
# the same, and the two runs follow each other in this one notebook, so the
# times per epoch can be compared. Under `paper`, the schedule is the paper's:
# 500 epochs, Nesterov momentum, and the learning rate divided by 10 at epochs
# 250 and 375. A forward hook records how many blocks each training
# mini-batch actually ran.

# %% tags=["nbval-ignore-output"]
depth = profile.pick(smoke=8, demo=32, fast=110, paper=110)
config = profile.train_config(**profile.pick(smoke={}, demo={}, fast={}, paper=paper_recipe("resnet110_stochastic_depth")))
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())

runs, trained, active_depth = {}, {}, []


def record_active_depth(model, _inputs, _output):
    if model.training:
        active_depth.append(model.active_blocks())


for name, final_survival in [(f"ResNet-{depth}, constant depth", 1.0), (f"ResNet-{depth}, stochastic depth", 0.5)]:
    torch.manual_seed(0)
    model = resnet_stochastic_depth(depth=depth, final_survival=final_survival)
    if final_survival < 1:
        model.register_forward_hook(record_active_depth)
    trained[name] = model
    runs[name] = fit(model, data, config, name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
constant, stochastic = runs.values()
# Skip the first epoch, which includes one-off start-up costs.
per_epoch = {name: sum(e["seconds"] for e in h.epochs[1:]) / max(1, len(h.epochs) - 1) for name, h in runs.items()}
rows = [
    [name, f"{h.meta['params']:,}", f"{h.best_val_acc:.2%}", f"{h.test_acc:.2%}", f"{per_epoch[name]:.1f} s", f"{h.seconds:.0f} s"]
    for name, h in runs.items()
]
caption = f"{constant.meta['dataset']}, {constant.meta['data_source']}; profile {profile.name!r}, {constant.config['epochs']} epochs, seed {constant.config['seed']}; {constant.meta['hardware']}"
display(Table(["network", "parameters", "best val accuracy", "test accuracy", "time per epoch", "total time"], rows, caption=caption))
ratio = per_epoch[list(runs)[1]] / per_epoch[list(runs)[0]]
print(f"Stochastic depth took {ratio:.0%} of the constant-depth time per epoch (a saving of {1 - ratio:.0%}) "
      f"on {constant.meta['hardware']}. The paper: 60 s against 75 s per epoch (80%) for ResNet-110 on a TITAN X.")  # fmt: skip

# %% [markdown]
# For reference, the paper trains ResNet-110 for 500 epochs on all of CIFAR.
# There, stochastic depth reaches **5.25%** test error on CIFAR-10 and
# **24.98%** on CIFAR-100 (Huang et al. 2016, as quoted by the survey). Those
# are the paper's numbers. The table above gives ours, for the profile, data
# and hardware its caption names.
#
# Do not expect a short profile to show the paper's accuracy gain. Stochastic
# depth is a regulariser: each block is trained on only a fraction of the
# mini-batches. In a few epochs on a subset, the network is still far from
# overfitting, so the dropped blocks mostly slow learning down (compare the
# training curves). The paper's gain appears over 500 epochs on all of CIFAR,
# where the constant-depth network overfits. What the short runs do show
# faithfully is the time per epoch.
#
# ## The depth actually used
#
# The hook recorded, for every training mini-batch of the stochastic-depth run,
# how many blocks computed their branch. The distribution is a sum of
# independent Bernoulli gates, centred on $\sum_l p_l$:

# %% tags=["nbval-ignore-output"]
blocks = len(trained[list(runs)[1]].units())
expected = sum(trained[list(runs)[1]].survival_probs)
fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
ax.hist(active_depth, bins=range(blocks + 2), align="left", rwidth=0.85)
ax.axvline(expected, color="black", ls="--", label=f"expected: {expected:.1f}")
ax.set_xlabel(f"active blocks in a mini-batch (of {blocks})")
ax.set_ylabel("mini-batches")
ax.set_title(f"{len(active_depth):,} training mini-batches, profile {profile.name!r}", fontsize=10)
ax.legend()
plt.show()
print(f"mean active blocks per mini-batch: {sum(active_depth) / len(active_depth):.2f} (expected {expected:.2f}) of {blocks}")

# %% [markdown]
# ## The ensemble view
#
# Veit, Wilber and Belongie (2016) read a residual network as an ensemble of
# many shorter paths. Deleting one block from a trained ResNet then removes
# only some of those paths. Stochastic depth trains the network to work with
# blocks missing, so we expect it to degrade more gracefully. To test this, we
# delete each block in turn from both trained networks, keeping its shortcut,
# and measure the test error.

# %% tags=["nbval-ignore-output"]
test_batches = DeviceBatches(data.test_images, data.test_labels, 500, mean=data.mean, std=data.std, train=False)
fig, ax = plt.subplots(figsize=(8, 3.6), constrained_layout=True)
summary = []
for name, model in trained.items():
    base = 1 - runs[name].test_acc
    errors = [1 - acc for acc in lesion_study(model, model.units(), test_batches)]
    ax.plot(range(1, len(errors) + 1), [100 * e for e in errors], marker="o", markersize=3, label=name)
    summary.append([name, f"{100 * base:.2f}%", f"{100 * sum(errors) / len(errors):.2f}%", f"{100 * max(errors):.2f}%"])
ax.set_xlabel("deleted block")
ax.set_ylabel("test error (%)")
ax.set_title(f"Deleting one block at test time, {data.name}, profile {profile.name!r}", fontsize=10)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
Table(["network", "test error, all blocks", "mean error, one block deleted", "worst"], summary)

# %% [markdown]
# Under `smoke` these networks have hardly trained, and the figure says
# nothing. Under the other profiles, compare the two curves. If stochastic
# depth has taught the network to do without any single block, its curve
# stays close to its intact error, while the constant-depth network loses more
# when a block is removed. The downsampling blocks (the first of stages 2 and
# 3) are special in both, because their shortcut changes the shape of the
# features. So is the first block. Its survival probability is close to 1, so
# it was almost never dropped during training, and the network never learned
# to do without it.
#
# ## Very deep: the 1202-layer network
#
# The paper also trains a 1202-layer ResNet (200 blocks per stage) with
# stochastic depth. Here is that network, built and counted:

# %%
deep = resnet_stochastic_depth(depth=1202)
print(f"blocks: {len(deep.units())}, parameters: {count_parameters(deep):,}")
print(f"expected active blocks per mini-batch: {sum(deep.survival_probs):.1f} of {len(deep.units())}")

# %% [markdown]
# and one training step of it, on the CPU, with a batch of 16 random 32×32
# images:

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
optimizer = torch.optim.SGD(deep.parameters(), lr=0.1, momentum=0.9)
images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
deep.train()
start = time.perf_counter()
loss = torch.nn.functional.cross_entropy(deep(images), labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
seconds = time.perf_counter() - start
print(f"one training step of the 1202-layer network: {seconds:.2f} s on {hardware_description('cpu')}, "
      f"{deep.active_blocks()} of {len(deep.units())} blocks active, loss {loss.item():.3f}")  # fmt: skip

# %% [markdown]
# **Summing up.** Stochastic depth drops whole residual blocks, each with its
# own survival probability, once per mini-batch. It never computes what it
# drops, and at test time it scales each block by its probability. It trains
# faster than the constant-depth network (the measured ratio is above), and
# the paper finds that it also generalises better. The widespread
# per-sample, rescaled variant behaves the same in expectation, but it saves
# no time.
