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
# # 6. Comparing the variants: the survey's Table 8, checked
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/06_comparison.ipynb)
#
# The survey closes (its section 4) with one table, Table 8, that puts the
# variants of this book side by side on CIFAR, with Wide ResNet and
# EfficientNet. This chapter rebuilds that table live. For every row it shows
# the survey's figures, the original paper's, flags where they disagree,
# counts our implementation's parameters, and looks up what we have measured
# ourselves in the results ledger (`results/`). It then plots accuracy against
# parameters and FLOPs, and ends with the directions the survey lists:
# squeeze-and-excitation and CBAM (implemented and trained here), ResNeXt,
# Shake-Shake and PyramidSepDrop.

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the training runs below took about 8 minutes
# > on 2 CPU cores (measured; the other cells were not timed).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes @ git+https://github.com/resnotes/resnotes@v0.2.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torchvision
from IPython.display import display

from resnotes.data import load_cifar
from resnotes.ledger import load_ledger
from resnotes.models import count_flops, count_parameters, create_model, get_spec
from resnotes.models.se_cbam import CBAM, SqueezeExcitation, preact_resnet_attention
from resnotes.models.preact_resnet import preact_resnet
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile
from resnotes.report import Table, banner, results_table
from resnotes.train import fit

profile = get_profile()
print(banner(profile))
RESULTS = Path("../results") if Path("../results").is_dir() else Path("results")
ledger = load_ledger(RESULTS)
print(f"results ledger: {len(ledger)} records")

# %% [markdown]
# ## Table 8, live
#
# Four sources meet in each row of the table below:
#
# 1. **the survey's** parameters and CIFAR-10 / CIFAR-100 errors. We could not
#    obtain the survey's full table; where we have its figure, it is shown,
#    and "n/a" marks a figure we could not check;
# 2. **the original paper's** figures, with a flag where they differ from the
#    survey's;
# 3. **our parameter count**, computed now from our implementation;
# 4. **our measured accuracy** from the ledger, with its profile, dataset and
#    hardware, or "not yet measured".
#
# The rows' sources: Zagoruyko and Komodakis 2016 (WRN); Han, Kim and Kim 2017
# (PyramidNet, official README); Huang et al. 2017 (DenseNet, Table 2); Wang et
# al. 2017 (Attention); Huang et al. 2016 (stochastic depth); Tan and Le 2019
# (EfficientNet, transfer table).

# %% tags=["nbval-ignore-output"]
TABLE_8 = [
    # row, our model, survey (params, C10, C100), paper (params, C10, C100), flag
    ("WRN-28-10", "wrn28_10", (None, None, None), (36.5e6, 4.00, 19.25),
     "the paper: 4.17 / 20.50 in its first version, 4.00 / 19.25 later, 3.89 / 18.85 with dropout"),
    ("PyramidNet, bottleneck", "pyramidnet272_a200_bottleneck", (26.0e6, 3.31, 16.35), (26.0e6, 3.31, 16.35),
     "the survey labels the row α=270; these are the figures of depth 272 with α=200 (α=270 is depth 164: 27.0M, 3.48 / 17.01)"),
    ("DenseNet-BC, k=40", "densenet_bc190_k40", (None, None, None), (25.6e6, 3.46, 17.18), ""),
    ("Attention-452", "attention452", (None, None, 24.54), (8.6e6, 3.90, 20.45),
     "the survey gives 24.54% on CIFAR-100; the paper reports 20.45%"),
    ("Stochastic depth, ResNet-110", "resnet110_stochastic_depth", (None, None, None), (1.7e6, 5.25, 24.98), ""),
    ("EfficientNet-B7", None, (None, 1.1, 8.3), (64e6, 1.1, 8.3),
     "fine-tuned from ImageNet weights, not trained on CIFAR from scratch; the survey does not say so"),
]  # fmt: skip


def fmt(value, kind):
    if value is None:
        return "n/a"
    return f"{value / 1e6:.1f}M" if kind == "params" else f"{value:.2f}"


def measured(model_name):
    runs = [r for r in ledger if r["model"] == model_name and r["kind"] == "train"]
    if not runs:
        return "not yet measured"
    best = max(runs, key=lambda r: r["created"])
    return (f"{1 - best['test_acc']:.2%} error on {best['dataset']}, profile {best['profile']}, "
            f"{best['epochs']} epochs, {best['hardware']['device']}")  # fmt: skip


efficientnet = torchvision.models.efficientnet_b7(weights=None, num_classes=10)  # random weights, nothing downloaded
ours = {name: count_parameters(create_model(name)) for _, name, *_ in TABLE_8 if name}
ours[None] = count_parameters(efficientnet)
rows = []
for row, name, survey, paper, flag in TABLE_8:
    rows.append([
        row, " / ".join(fmt(v, k) for v, k in zip(survey, ("params", "err", "err"))),
        " / ".join(fmt(v, k) for v, k in zip(paper, ("params", "err", "err"))),
        f"{ours[name] / 1e6:.1f}M" + ("" if name else " (torchvision)"),
        measured(name) if name else "not trained here (ImageNet pre-training)", ("⚠ " + flag) if flag else "",
    ])  # fmt: skip
Table(["row", "survey: params / C10 / C100 error (%)", "paper", "our params", "our measured error", "flags"], rows)

# %% [markdown]
# Our counts agree with the papers' to within 5% in every row: WRN-28-10 is
# built by `resnotes.models.wide_resnet`, the others by the chapters' modules,
# and EfficientNet-B7 by torchvision with a 10-class head (63.8M; the paper's
# 64M is the same network, and its 66M ImageNet figure has a 1,000-class
# head).
#
# **EfficientNet-B7 is not comparable with the other rows.** Every other row
# is a network trained on CIFAR from scratch, at 32×32. EfficientNet's 98.9%
# and 91.7% accuracy (1.1% and 8.3% error) come from the paper's transfer
# experiments: an ImageNet-pretrained EfficientNet-B7, fine-tuned on CIFAR
# images upscaled to the resolution it was built for (Tan and Le 2019,
# following Kornblith et al. 2019 and GPipe). It also uses far more compute:
# the paper lists 37B FLOPs per image for B7 on ImageNet, against at most
# 18.6B (DenseNet-BC-190) for the CIFAR networks here. The survey's table puts the two kinds of
# number in one column without saying so.
#
# Wide ResNet, the one architecture of the table without a chapter, is short
# enough to show whole: a pre-activation unit, made wider.

# %%
from resnotes.models.wide_resnet import WideBasicUnit  # noqa: E402

print(inspect.getsource(WideBasicUnit.forward))
wrn = create_model("wrn28_10")
print(f"WRN-28-10: {count_parameters(wrn):,} parameters (paper: 36.5M), {count_flops(wrn) / 1e9:.2f} GFLOPs per 32×32 image")

# %% [markdown]
# ## Accuracy against parameters and FLOPs
#
# The papers' figures (CIFAR-10 test error, original dataset, full schedules)
# and every training run in our ledger are drawn on the same cost axes, but in
# separate rows: the papers' points on top, ours below, as triangles labelled
# with their profile, dataset and hardware. FLOPs are ours, counted for one 32×32 image
# with our implementation of each paper's network, since most papers do not
# give them. EfficientNet-B7 is left out: its numbers are not from CIFAR-scale
# training (see above).

# %%
PAPER_POINTS = {  # model -> (label, CIFAR-10 error (%) in its paper)
    "preact_resnet110": ("ResNet-110", 6.37), "preact_resnet164": ("ResNet-164", 5.46), "preact_resnet1001": ("ResNet-1001", 4.92),
    "pyramidnet110_a48": ("PyramidNet-110 α=48", 4.62), "pyramidnet110_a270": ("PyramidNet-110 α=270", 3.73),
    "pyramidnet272_a200_bottleneck": ("PyramidNet-272 α=200", 3.31),
    "densenet40_k12": ("DenseNet-40", 5.24), "densenet_bc100_k12": ("DenseNet-BC-100", 4.51),
    "densenet_bc250_k24": ("DenseNet-BC-250", 3.62), "densenet_bc190_k40": ("DenseNet-BC-190", 3.46),
    "attention92": ("Attention-92", 4.99), "attention236": ("Attention-236", 4.14), "attention452": ("Attention-452", 3.90),
    "resnet110_stochastic_depth": ("ResNet-110, stoch. depth", 5.25), "wrn28_10": ("WRN-28-10", 4.00),
}  # fmt: skip
costs = {}
for name in list(PAPER_POINTS) + [r["model"] for r in ledger]:
    if name not in costs:
        model = create_model(name)
        costs[name] = (count_parameters(model), count_flops(model))
ours = [r for r in ledger if r["kind"] == "train"]
fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True, sharex="col", height_ratios=[3, 2])
for column, (index, label) in enumerate([(0, "parameters"), (1, "FLOPs per 32×32 image")]):
    top, bottom = axes[0, column], axes[1, column]
    for position, (name, (short, error)) in enumerate(PAPER_POINTS.items()):
        x = costs[name][index]
        top.scatter([x], [100 - error], color="grey")
        top.annotate(short, (x, 100 - error), textcoords="offset points", xytext=(5, -8 if position % 2 else 4), fontsize=7, color="dimgrey")
    top.set_title("the papers: CIFAR-10, full schedules", fontsize=10)
    top.set_ylabel("test accuracy (%)")
    for record in ours:
        x = record["params"] if index == 0 else record["flops_per_image"]
        bottom.scatter([x], [100 * record["test_acc"]], marker="^", s=60,
                       label=f"{record['model']}: {record['profile']}, {record['epochs']} epochs, {record['dataset']}, {record['hardware']['device']}")  # fmt: skip
    bottom.set_title(f"ours, from the ledger ({len(ours)} training run{'' if len(ours) == 1 else 's'})", fontsize=10)
    bottom.set_ylabel("test accuracy (%)")
    bottom.set_xscale("log")
    bottom.set_xlabel(label)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
if ours:
    axes[1, 0].legend(fontsize=7, loc="lower right")
fig.suptitle("Accuracy against cost. The two rows come from different data and schedules: compare within a row.", fontsize=10)
plt.show()

# %% [markdown]
# Read the top row as the papers' claims and the bottom row as what this
# project has measured, under the profile in the legend. A run from a short
# CPU profile reaches far lower accuracy than the papers' points; that is the
# schedule and the subset, not the architecture. Among the papers' points, accuracy grows
# with parameters only loosely: at about 1.7M parameters, the networks of
# this book span almost two points of error (6.37% for ResNet-110 against
# 4.62% for PyramidNet-110 with α=48), and DenseNet-BC-100 beats ResNet-110
# with less than half the parameters.
#
# ## Beyond the table: squeeze-and-excitation and CBAM
#
# The survey lists attention *inside* a residual unit as a direction. Two
# light-weight modules became standard:
#
# - **Squeeze-and-excitation** (Hu, Shen and Sun, CVPR 2018) pools each
#   channel of the residual branch to one number, passes the vector through a
#   two-layer bottleneck MLP (reduction $r = 16$) and a sigmoid, and rescales
#   the channels with the result.
# - **CBAM** (Woo, Park, Lee and Kweon, ECCV 2018) does the same with both
#   average- and max-pooling through a shared MLP, then adds a *spatial* gate:
#   a 7×7 convolution over the channel-wise mean and max, and a sigmoid.
#
# Both act on the residual branch before the addition,
# $x_{l+1} = x_l + A(F(x_l))$, so the shortcut stays an identity (Chapter 1).
# Unlike the Residual Attention Network's hourglass (Chapter 4), they add
# almost nothing:

# %%
print(inspect.getsource(SqueezeExcitation.forward))
print(inspect.getsource(CBAM.forward))
rows = []
for depth in (20, 110):
    base = count_parameters(preact_resnet(depth=depth))
    for attention in (None, "se", "cbam"):
        model = preact_resnet(depth=depth) if attention is None else preact_resnet_attention(depth=depth, attention=attention)
        params, flops = count_parameters(model), count_flops(model)
        rows.append([f"pre-act ResNet-{depth}" + (f" + {attention.upper()}" if attention else ""), f"{params:,}", f"{(params - base) / base:+.2%}", f"{flops / 1e6:.1f}"])
Table(["network", "parameters", "overhead", "MFLOPs / image"], rows)

# %% [markdown]
# A short training comparison, with the same seed, data and schedule for all
# three. Under `fast` and `paper` the network is ResNet-110; the CPU profiles
# use shallower networks.

# %% tags=["nbval-ignore-output"]
depth = profile.pick(smoke=8, demo=14, fast=110, paper=110)
config = profile.train_config()
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())
runs = {}
for attention in (None, "se", "cbam"):
    name = f"pre-act ResNet-{depth}" + (f" + {attention.upper()}" if attention else "")
    torch.manual_seed(0)
    model = preact_resnet(depth=depth) if attention is None else preact_resnet_attention(depth=depth, attention=attention)
    runs[name] = fit(model, data, config, name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()
results_table(runs)

# %% [markdown]
# One seed and a short schedule cannot rank modules that the papers separate
# by a fraction of a point; the table is a check that both train as drop-in
# additions, and a measure of their cost in time. In the committed `demo`
# run (ResNet-14, 10 epochs on 4,500 images, CPU), the three networks end
# within two points of each other on the 1,000 test images, and CBAM takes
# about 1.6 times the plain network's time per epoch for 1% more FLOPs. On a
# CPU the gates cost more time than their FLOPs suggest: they are many small,
# memory-bound operations.
#
# ## Other directions the survey lists
#
# **ResNeXt** (Xie, Girshick, Dollár, Tu and He, "Aggregated Residual
# Transformations for Deep Neural Networks", CVPR 2017) splits the 3×3
# convolution of a bottleneck unit into $C$ parallel groups (the
# *cardinality*), implemented as one grouped convolution. At equal parameters,
# more groups of fewer channels beat a wider or deeper ResNet. On CIFAR, its
# 29-layer networks reach 3.65% (8×64d, 34.4M parameters) and 3.58% (16×64d,
# 68.1M) error on CIFAR-10, 17.77% and 17.31% on CIFAR-100 (the paper's
# Table 7, mean of 10 runs).
#
# **Shake-Shake** (Gastaldi, "Shake-Shake regularization", 2017) gives each
# unit two parallel residual branches and mixes them with a random convex
# combination $\alpha F_1 + (1 - \alpha) F_2$ in the forward pass and an
# *independent* random $\beta$ in the backward pass; at test time both weigh
# 0.5. This noise on the branches is a regulariser for long schedules (1,800
# epochs): 2.86% error on CIFAR-10 for a 26-layer 2×96d network (average of 5
# runs), and 15.85% on CIFAR-100.
#
# **PyramidSepDrop** (Yamada, Iwamura and Kise, "Deep Pyramidal Residual
# Networks with Separated Stochastic Depth", 2016) brings stochastic depth
# (Chapter 5) to PyramidNet (Chapter 2). A pyramidal unit's output has two
# parts: the channels that match the shortcut, and the new, zero-padded ones.
# Separated stochastic depth drops the two parts with independent gates.
# The paper reports 16.18% error on CIFAR-100, against 18.29% for its
# PyramidNet baseline.
#
# ## The ledger
#
# Every record in `results/`, with its provenance. Records of kind `bench`
# come from the short GPU check (`python -m resnotes.bench gpu`): a couple of
# epochs, timed; their accuracy is not a result.

# %% tags=["nbval-ignore-output"]
rows = [[r["model"], r["kind"], r["dataset"], r["profile"], r["epochs"], r["seed"], f"{r['hardware']['device']} × {r['hardware']['count']}",
         f"{r['test_acc']:.2%}", f"{r['seconds_per_epoch']:.1f} s", f"{r['images_per_s']:,.0f}", r["git_commit"][:12]] for r in ledger]  # fmt: skip
Table(["model", "kind", "dataset", "profile", "epochs", "seed", "hardware", "test accuracy", "s / epoch", "img/s", "commit"], rows) if rows else print("the ledger is empty")
