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
# > measured on a GPU. A CPU runs `demo`: the whole chapter took 6 minutes on 2 CPU
# > cores (measured; its last cell prints the time of the run shown here).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes==0.3.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect
import time

import matplotlib.pyplot as plt
import torch
import torchvision
from IPython.display import display

import resnotes as rn
from resnotes.analysis import lesion_study
from resnotes.models.stochastic_depth import (
    StochasticDepthBlock,
    StochasticDepthResNet,
    stochastic_depth_rescaled,
)
from resnotes.runtime import hardware_description

profile = rn.start_chapter()

# %% [markdown]
# ## Survival probabilities
#
# Let the network have $L$ residual blocks, and let $b_l \in \{0, 1\}$ be a
# Bernoulli gate, drawn once per mini-batch, with survival probability $p_l$.
# Block $l$ computes
#
# $$
# \begin{aligned}
# H_l &= \mathrm{ReLU}\bigl(b_l \, f_l(H_{l-1}) + \mathrm{id}(H_{l-1})\bigr)
# &&\text{while training,}\\
# H_l &= \mathrm{ReLU}\bigl(p_l \, f_l(H_{l-1}) + \mathrm{id}(H_{l-1})\bigr)
# &&\text{at test time.}
# \end{aligned}
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
linear = StochasticDepthResNet(depth=110, final_survival=0.5)
uniform = StochasticDepthResNet(depth=110, final_survival=0.5, survival_rule="uniform")
fig, ax = plt.subplots(figsize=(7, 3.4), constrained_layout=True)
for label, model in [
    ("linear decay, $p_L = 0.5$", linear),
    ("uniform, $p_l = 0.5$", uniform),
]:
    ax.plot(range(1, 55), model.survival_probs, marker=".", label=label)
ax.set_xlabel("block $l$")
ax.set_ylabel("survival probability $p_l$")
ax.set_ylim(0, 1.05)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
for label, model in [("linear", linear), ("uniform", uniform)]:
    expected = sum(model.survival_probs)
    print(f"{label:8s} rule: expected active blocks per mini-batch", end=" ")
    print(f"= {expected:.2f} of 54 ({expected / 54:.0%})")

# %% [markdown]
# With the linear rule, a mini-batch passes through about three quarters of
# the blocks on average. The blocks it skips are never computed, forward or
# backward. That is where the speed-up comes from: the official repository's
# README (yueatsprograms/Stochastic_Depth) reports 60 s instead of 75 s per
# epoch for ResNet-110 on a TITAN X, so the constant-depth network takes 25%
# longer (stochastic depth needs 20% less time). This is the block as the
# package implements it, its comments giving the paper's equations:

# %%
print(inspect.getsource(StochasticDepthBlock.forward))

# %% [markdown]
# ## Two methods under one name
#
# The *stochastic depth* in most libraries is not quite this method.
# `torchvision.ops.stochastic_depth` and timm's `DropPath` always compute the
# branch. They then zero it, per sample (timm's only mode, torchvision's
# `mode="row"`) or for the whole batch (torchvision's `mode="batch"`), and
# divide the survivors by $p_l$ *during training*, so
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
    ours = stochastic_depth_rescaled(
        branch, survival_prob=0.8, mode=mode, training=True
    )
    torch.manual_seed(0)
    theirs = torchvision.ops.stochastic_depth(branch, p=0.2, mode=mode, training=True)
    same = torch.allclose(ours, theirs)
    print(f"mode={mode!r}: equal to torchvision.ops.stochastic_depth: {same}")

# %% [markdown]
# ## The network, counted live
#
# The network is the original CIFAR ResNet of He et al. (2015), as in the
# official code. Its blocks are post-activation (conv-BN-ReLU-conv-BN, add,
# ReLU), not the pre-activation units of Chapter 1. Where the shape changes,
# its parameter-free shortcut subsamples by 2 and zero-pads the new channels,
# as in the first releases of the official code. The official repository
# later replaced the subsampling by a 2×2 average pool (its pull request #4,
# "Bug in Average Pooling layer"); both have no parameters. Stochastic depth adds no
# parameters either.

# %%
rn.paper_table(
    ["resnet110", "resnet110_stochastic_depth", "resnet1202_stochastic_depth"]
)

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
config = rn.make_config("resnet110_stochastic_depth", profile)
data = rn.load_cifar("cifar10", **profile.data_kwargs())
print(data)

active_depth = []  # for each training mini-batch: how many branches ran


def count_active_branches(model):
    """Hooks that count, per training mini-batch, the blocks that run their branch."""

    def new_batch(model, _inputs):
        if model.training:
            active_depth.append(0)

    def branch_ran(branch, _inputs, _output):
        if branch.training:
            active_depth[-1] += 1

    model.register_forward_pre_hook(new_batch)
    for block in model.units():
        block.branch.register_forward_hook(branch_ran)


built_from = {
    f"ResNet-{depth}, constant depth": ("resnet110", {"depth": depth}),
    f"ResNet-{depth}, stochastic depth": (
        "resnet110_stochastic_depth",
        {"depth": depth},
    ),
}
runs, trained = {}, {}
for name, (registry_name, kwargs) in built_from.items():
    torch.manual_seed(0)
    trained[name] = rn.create_model(registry_name, **kwargs)
    if name.endswith("stochastic depth"):
        count_active_branches(trained[name])
    runs[name] = rn.fit(trained[name], data, config, name=name)

# %% tags=["nbval-ignore-output"]
rn.learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
constant_name, stochastic_name = runs
total = {name: f"{h.seconds:.0f} s" for name, h in runs.items()}
print(rn.compare(runs, stochastic_name, constant_name))
rn.record_runs(runs, built_from)
display(rn.results_table(runs, extra={"total time": total}))
ratio = runs[stochastic_name].steady("seconds") / runs[constant_name].steady("seconds")
print(
    f"Stochastic depth took {ratio:.0%} of the constant-depth time per epoch", end=" "
)
print(f"(a saving of {1 - ratio:.0%}).")
print("The official README: 60 s against 75 s per epoch (80%) for ResNet-110,")
print("on a TITAN X.")

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
# **What the committed run shows.** Both halves of that. With stochastic
# depth, ResNet-32 reached 43.6% test accuracy against 55.7% at constant depth:
# 12.1 points worse, well beyond the test set's noise (the 95% intervals do not
# overlap). After 8 epochs on 4,500 images the regulariser only costs
# accuracy. And an epoch took 78% of the constant-depth time, a saving of 22%:
# less than the 27% that the active blocks alone predict (11 of 15 on average,
# below), since the stem, the classifier, the data and the optimiser step do
# not shrink, and close to the official README's 20%. Epoch times on a shared CPU
# vary from one execution to the next, so read this one run's saving as
# approximate. (Differs from paper: our optimiser leaves a skipped
# block's parameters alone in that step, since they get no gradient; the
# official Torch code updates every parameter in every step, so a skipped
# block there still receives its weight decay and momentum.)
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
ax.set_title(
    f"{len(active_depth):,} training mini-batches of {data.name}, "
    f"profile {profile.name!r}"
)
ax.legend()
plt.show()
mean = sum(active_depth) / len(active_depth)
print(f"mean active blocks per mini-batch: {mean:.2f}", end=" ")
print(f"(expected {expected:.2f}) of {blocks}")

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
test_batches = rn.DeviceBatches(
    data.test_images, data.test_labels, 500, mean=data.mean, std=data.std, train=False
)
fig, ax = plt.subplots(figsize=(7.5, 3.4), constrained_layout=True)
summary = []
for name, model in trained.items():
    base = 1 - runs[name].test_acc
    errors = [1 - acc for acc in lesion_study(model, model.units(), test_batches)]
    label = name.split(", ")[1]
    ax.plot(
        range(1, len(errors) + 1),
        [100 * e for e in errors],
        marker="o",
        markersize=3,
        label=label,
    )
    mean = sum(errors) / len(errors)
    summary.append([name, f"{base:.1%}", f"{mean:.1%}", f"{max(errors):.1%}"])
ax.set_xlabel("deleted block")
ax.set_ylabel("test error (%)")
hardware = runs[constant_name].meta["hardware"]
ax.set_title(
    f"Deleting one block at test time, {data.name}, profile {profile.name!r}\n"
    f"{hardware}"
)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
headers = ["network", "test error, all blocks", "mean, one block deleted", "worst"]
rn.Table(headers, summary)

# %% [markdown]
# Under `smoke` these networks have hardly trained, and the figure says
# nothing. Under the other profiles, compare the two curves. If stochastic
# depth has taught the network to do without any single block, its curve
# stays close to its intact error, while the constant-depth network loses more
# when a block is removed. The downsampling blocks (the first of stages 2 and
# 3) may be special in both, because their shortcut changes the shape of the
# features. So is the first block. Its survival probability is close to 1, so
# it was almost never dropped during training, and the network never learned
# to do without it.
#
# **What the committed run shows.** Read each curve against its own intact
# error, since the stochastic-depth network starts 12 points worse (56.4%
# error against 44.3%). Deleting one of blocks 3 to 15 costs the
# stochastic-depth network almost nothing (its error stays between 56% and
# 58%), while the constant-depth network loses 1 to 9 points; on average over
# all blocks, a deletion costs 2.6 points against 7.9. So the robustness
# shows even after 8 epochs, although the network it protects is the weaker
# one. The first two blocks are the exception in both networks. The first, as
# predicted, is the block each network can least do without: deleting it
# raises the stochastic-depth network's error to 83%, 26.6 points above its
# intact 56.4%, and the constant-depth network's to 77.5%, 33.2 points above
# its 44.3%; so even here the stochastic-depth network loses less. Its
# survival probability is
# $1 - 0.5/15 \approx 0.967$, so it was skipped in about 1 mini-batch in 30. The
# second we did not predict: deleting it also costs both networks more than any
# later block (about 62% and 72% error, read from the figure). Its survival
# probability, $1 - 1/15 \approx 0.933$, is the next highest, so it too was
# seldom skipped. The
# downsampling blocks (6 and 11)
# are not special here: their shortcut, a subsampled and zero-padded input,
# is enough to carry the signal on.
#
# ## Very deep: the 1202-layer network
#
# The paper also trains a 1202-layer ResNet (200 blocks per stage) with
# stochastic depth. Here is that network, built and counted:

# %%
deep = StochasticDepthResNet(depth=1202)
print(f"blocks: {len(deep.units())}, parameters: {rn.count_parameters(deep):,}")
expected = sum(deep.survival_probs)
print(f"expected active blocks per mini-batch: {expected:.1f} of {len(deep.units())}")

# %% [markdown]
# and one training step of it, on the CPU, with a batch of 16 random 32×32
# images:

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
active_depth.clear()
count_active_branches(deep)
optimizer = torch.optim.SGD(deep.parameters(), lr=0.1, momentum=0.9)
images, labels = torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,))
deep.train()
start = time.perf_counter()
loss = torch.nn.functional.cross_entropy(deep(images), labels)
optimizer.zero_grad()
loss.backward()
optimizer.step()
seconds = time.perf_counter() - start
print(f"one training step of the 1202-layer network: {seconds:.2f} s")
active = f"{active_depth[-1]} of {len(deep.units())} blocks active"
print(f"on {hardware_description('cpu')}, {active}, loss {loss.item():.3f}")

# %% [markdown]
# **Summing up.** Stochastic depth drops whole residual blocks, each with its
# own survival probability, once per mini-batch. It never computes what it
# drops, and at test time it scales each block by its probability. It trains
# faster than the constant-depth network (the measured ratio is above), and
# the paper finds that it also generalises better. The widespread
# per-sample, rescaled variant behaves the same in expectation, but it saves
# no time.


# %% [markdown]
# ## Exercises
#
# Each problem gives its kind (*reason*, *compute*, *code* or *experiment*) and its
# difficulty (★ to ★★★). For a code or compute problem, fill in the cell, then
# uncomment its `check(...)` line: the check runs your answer on several cases and
# says what is wrong, if anything. Solutions are hidden below each problem.

# %%
from resnotes.exercises import check
from resnotes.models.stochastic_depth import StochasticDepthResNet

# %% [markdown]
# **5.1 The two survival rules** (code, ★). Write
# `my_survival(num_blocks, final_survival, rule)`, the list $p_1, \dots, p_L$ for
# `rule="linear"` ($p_l = 1 - \frac{l}{L}(1 - p_L)$) and `rule="uniform"`
# ($p_l = p_L$). Compare your list for ResNet-110 with `model.survival_probs`.


# %%
def my_survival(num_blocks, final_survival, rule): ...  # your code here


# check("stochastic_depth.survival_probabilities", my_survival)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# The index $l$ runs from 1 to $L$: the first block survives with
# $1 - (1 - p_L)/L$ (0.9907 for $L = 54$), not 1, and the last with exactly $p_L$.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_survival(num_blocks, final_survival, rule):
#     if rule == "uniform":
#         return [final_survival] * num_blocks
#     return [
#         1 - (l / num_blocks) * (1 - final_survival)
#         for l in range(1, num_blocks + 1)
#     ]
#
# check("stochastic_depth.survival_probabilities", solution_survival)
# model = StochasticDepthResNet(depth=110, final_survival=0.5)
# print(
#     "same as the model:",
#     all(
#         abs(a - b) < 1e-12
#         for a, b in zip(solution_survival(54, 0.5, "linear"), model.survival_probs)
#     ),
# )
# ```
#
# ```text
# ✓ stochastic_depth.survival_probabilities: correct on all 6 cases.
# same as the model: True
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_survival(num_blocks, final_survival, rule):
        if rule == "uniform":
            return [final_survival] * num_blocks
        return [
            1 - (l / num_blocks) * (1 - final_survival)
            for l in range(1, num_blocks + 1)
        ]

    check("stochastic_depth.survival_probabilities", solution_survival)
    model = StochasticDepthResNet(depth=110, final_survival=0.5)
    print(
        "same as the model:",
        all(
            abs(a - b) < 1e-12
            for a, b in zip(solution_survival(54, 0.5, "linear"), model.survival_probs)
        ),
    )


# %% [markdown]
# **5.2 Expected depth** (compute, ★★). Write
# `my_expected_active(num_blocks, final_survival, rule)`, the expected number of
# blocks a mini-batch runs. Find a closed form for the linear rule, and evaluate
# both rules for ResNet-110 with $p_L = 0.5$. Which uniform $p$ gives the same
# expected depth as linear decay to 0.5?


# %%
def my_expected_active(num_blocks, final_survival, rule): ...  # your code here


# check("stochastic_depth.expected_active_blocks", my_expected_active)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# Each block runs with probability $p_l$, so $E = \sum_l p_l$. For the linear rule,
# $\sum_{l=1}^{L} l = L(L+1)/2$ gives $E = L - (1 - p_L)(L+1)/2$. ResNet-110
# ($L = 54$): $54 - 0.5 \times 55/2 = 40.25$ blocks (75%); uniform $p = 0.5$: 27. The uniform
# rule with $p = 40.25/54 \approx 0.745$ has the same expected depth; the shortcut
# $L(1 + p_L)/2 = 40.5$ is the continuous approximation, a quarter of a block off.
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_expected_active(num_blocks, final_survival, rule):
#     return sum(solution_survival(num_blocks, final_survival, rule))
#
# check("stochastic_depth.expected_active_blocks", solution_expected_active)
# print(
#     f"ResNet-110: linear {solution_expected_active(54, 0.5, 'linear'):.2f} | "
#     f"uniform {solution_expected_active(54, 0.5, 'uniform'):.2f}"
# )
# ```
#
# ```text
# ✓ stochastic_depth.expected_active_blocks: correct on all 6 cases.
# ResNet-110: linear 40.25 | uniform 27.00
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_expected_active(num_blocks, final_survival, rule):
        return sum(solution_survival(num_blocks, final_survival, rule))

    check("stochastic_depth.expected_active_blocks", solution_expected_active)
    print(
        f"ResNet-110: linear {solution_expected_active(54, 0.5, 'linear'):.2f} | "
        f"uniform {solution_expected_active(54, 0.5, 'uniform'):.2f}"
    )


# %% [markdown]
# **5.3 Predicting the time saving** (compute, ★★). Assume the training time is
# proportional to the number of blocks that run. Write
# `my_time_saving(depth, final_survival)`: the fraction of the constant-depth
# network's training time that stochastic depth (linear rule) saves. Predict it for
# ResNet-110 and for the 1202-layer network, with $p_L = 0.5$. The official
# repository's README reports 60 s against 75 s per epoch for ResNet-110: what
# fraction of the time do the
# parts outside the blocks take, if that explains the gap? What saving does that
# predict for 1202 layers?


# %%
def my_time_saving(depth, final_survival): ...  # your code here


# check("stochastic_depth.time_saving", my_time_saving)

# %% [markdown]
# <details>
# <summary>Solution</summary>
#
# A network of depth $6n + 2$ has $L = 3n$ blocks, and the saving is $1 - E/L =
# (1 - p_L)(L + 1)/(2L)$. ResNet-110 ($L = 54$): 25.5%. The 1202-layer network
# ($L = 600$): $1 - 449.75/600 = 25.0\%$. The official README's timings give a
# saving of 20% (60/75 = 0.8) for ResNet-110. If a fraction $c$ of the
# constant-depth time is
# spent outside the blocks (stem, classifier, loss, optimiser step, data), then
# $0.8 = c + (1 - c)(1 - 0.255)$, so $c \approx 0.21$. That outside part does not grow
# with the number of blocks, while the blocks' time grows 600/54 = 11.1-fold, so for
# 1202 layers it is only about 2.4% of the time, and the predicted saving is
# $(1 - 0.024) \times 25.0\% \approx 24\%$. (The optimiser step, in fact, grows with the
# parameters, so this is an estimate; a timing of the 1202-layer network is the
# test.)
#
# <!-- The reference solution, as the next code cell runs it (tools/solutions.py) -->
#
# ```python
# def solution_time_saving(depth, final_survival):
#     blocks = 3 * ((depth - 2) // 6)
#     return 1 - solution_expected_active(blocks, final_survival, "linear") / blocks
#
# check("stochastic_depth.time_saving", solution_time_saving)
# s110, s1202 = solution_time_saving(110, 0.5), solution_time_saving(1202, 0.5)
# # c: the fraction of the time outside the blocks, from the README's 60 s / 75 s
# c = (0.8 - (1 - s110)) / s110
# c1202 = c / (c + (1 - c) * 600 / 54)
# print(f"predicted saving: ResNet-110 {s110:.1%}, 1202 layers {s1202:.1%}")
# print(f"outside the blocks: {c:.1%} of ResNet-110's time,", end=" ")
# print(f"{c1202:.1%} at 1202 layers;")
# print(f"predicted saving there {(1 - c1202) * s1202:.1%}")
# ```
#
# ```text
# ✓ stochastic_depth.time_saving: correct on all 5 cases.
# predicted saving: ResNet-110 25.5%, 1202 layers 25.0%
# outside the blocks: 21.5% of ResNet-110's time, 2.4% at 1202 layers;
# predicted saving there 24.4%
# ```
# </details>


# %% tags=["nbval-ignore-output", "remove-cell"] jupyter={"source_hidden": true} cellView="form"
# @title Reference solution: it runs only when the book is executed
if rn.run_solutions():  # RESNOTES_SOLUTIONS=1; "Run all" skips it

    def solution_time_saving(depth, final_survival):
        blocks = 3 * ((depth - 2) // 6)
        return 1 - solution_expected_active(blocks, final_survival, "linear") / blocks

    check("stochastic_depth.time_saving", solution_time_saving)
    s110, s1202 = solution_time_saving(110, 0.5), solution_time_saving(1202, 0.5)
    # c: the fraction of the time outside the blocks, from the README's 60 s / 75 s
    c = (0.8 - (1 - s110)) / s110
    c1202 = c / (c + (1 - c) * 600 / 54)
    print(f"predicted saving: ResNet-110 {s110:.1%}, 1202 layers {s1202:.1%}")
    print(f"outside the blocks: {c:.1%} of ResNet-110's time,", end=" ")
    print(f"{c1202:.1%} at 1202 layers;")
    print(f"predicted saving there {(1 - c1202) * s1202:.1%}")


# %% [markdown]
# **5.4 Which blocks to drop** (reason, ★★). The linear rule drops the late blocks
# more often than the early ones. Give two reasons for that choice, one from what
# the blocks compute and one from the chapter's lesion experiment.
#
# <details>
# <summary>Solution</summary>
#
# First, the early blocks compute low-level features that every later block reads;
# dropping them changes the input of the whole rest of the network, while a late
# block refines features that little depends on. Second, the lesion experiment
# shows the consequence: the first block, which survives almost always
# ($p_1 = 1 - 0.5/15 \approx 0.967$ in the chapter's ResNet-32, 0.991 in ResNet-110),
# is one the trained network cannot do without, while deleting
# a late block, which was absent during training half of the time, costs little.
# The paper compares the two rules over a range of $p_L$ and prefers linear
# decay. Note that at the same $p_L$ the two are not the same depth: in expected depth, linear decay to 0.5 matches uniform 0.745, not 0.5
# (exercise 5.2).
#
# </details>

# %% [markdown]
# **5.5 Linear against uniform, at the same expected depth** (experiment, ★★★).
# In the training section, train the `demo` network (depth 32, $L = 15$) with
# `survival_rule="uniform", final_survival=0.75` beside the linear rule with
# $p_L = 0.5$: their expected depths are 11.25 and 11.0 blocks.
#
# - *What to look for.* The times per epoch should be nearly equal (the expected
#   depths are), so any difference in accuracy comes from *which* blocks are dropped.
#   Repeat the lesion study on both and compare the first block.
# - *Cost (estimates, not measured).* Under `demo` on a 2-core CPU the chapter's
#   two runs took about 5 minutes in all (3.0 for the constant-depth run, 2.3
#   for the stochastic one: the table's total times), so the extra uniform run, which runs about as many blocks
#   as the linear one (11.25 against 11.0 expected), takes about 2.5 minutes. Under `fast` on a T4 (ResNet-110, 0.51 GFLOPs per image), assuming an
#   effective 2 TFLOP/s, about 8 to 9 minutes for a constant-depth run and about
#   three quarters of that with stochastic depth.
# - *Noise.* One run's 95% (Wilson) interval on `demo`'s 1,000 test images is about
#   ±3 points near 50%, and seeds of one recipe spread over several points
#   (chapters 1 and 2 show three seeds of their comparisons). The paper's
#   comparison of the rules is on full CIFAR after 500 epochs; do not expect to see it under `demo`. The time per epoch is the
#   robust measurement here.
#
# <details>
# <summary>What to expect</summary>
#
# Equal times per epoch within a few percent, accuracies within the noise, and in
# the lesion study a uniform-rule network that depends less on its first block
# (it was dropped a quarter of the time) and more on its last blocks than the
# linear-rule one.
#
# </details>


# %% tags=["nbval-ignore-output"]
print(rn.chapter_time())
