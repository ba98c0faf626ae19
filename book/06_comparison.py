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
# > measured on a GPU. A CPU runs `demo`: the whole chapter took 5 minutes on 2 CPU
# > cores (measured; its last cell prints the time of the run shown here).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes==0.3.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torchvision
from IPython.display import display
from matplotlib.lines import Line2D

import resnotes as rn
from resnotes.evidence import network_kwargs
from resnotes.models.preact_resnet import PreActResNet
from resnotes.models.se_cbam import CBAM, SqueezeExcitation, preact_resnet_attention
from resnotes.report import accuracy_with_interval, wilson_interval

profile = rn.start_chapter()
ledger = rn.load_ledger()
print(f"results ledger: {len(ledger)} records")

# %% [markdown]
# ## Table 8, live
#
# Four sources meet in each row of the table below:
#
# 1. **the survey's** parameters and CIFAR-10 / CIFAR-100 errors, from its
#    Table 8;
# 2. **the original paper's** figures, kept with each model's registry entry
#    (`rn.get_spec(name).paper`); a number in brackets after the row's name
#    points to a note below the table, where the survey's row differs from the
#    paper or needs a word;
# 3. **our parameter count**, computed now from our implementation;
# 4. **our measured accuracy** of that network from the ledger, or "not
#    measured". The chapters train smaller versions; those runs are in the
#    figure and the ledger further down.

# %% tags=["hide-input", "nbval-ignore-output"]
SURVEY_TABLE_8 = {  # row -> (our model, survey: params, C10 error %, C100 error %)
    "WRN-28-10": ("wrn28_k10", 36.5e6, 4.17, 20.5),
    "PyramidNet (bottleneck, α=270)": (
        "pyramidnet272_bottleneck_a200",
        26.0e6,
        3.31,
        16.35,
    ),
    "DenseNet (k=40)": ("densenet190_bc_k40", 25.6e6, 3.46, 17.18),
    "Attention-452": ("attention452", 8.6e6, 3.90, 24.54),
    "Stoc-depth-110": ("resnet110_stochastic_depth", 1.7e6, 5.25, 24.98),
    "EfficientNet-B7": (None, 64e6, 1.1, 8.3),
}
# EfficientNet-B7 has no registry entry: its paper's figures (Tan and Le 2019,
# transfer learning table) are written here, the one place they occur.
EFFICIENTNET_PAPER = (64e6, 1.1, 8.3)
NOTES = {  # the survey's row -> a note on it, numbered in the table
    "WRN-28-10": "the survey's 4.17 / 20.5 are WRN-28-10 trained on ZCA-whitened"
    " images; with mean/std normalisation, as in this book, the paper and its"
    " README give 4.00 / 19.25 (3.89 / 18.85 with dropout).",
    "PyramidNet (bottleneck, α=270)": "the survey labels the row α=270, but these"
    " are the figures of depth 272 with α=200 (α=270 is depth 164: 27.0M,"
    " 3.48 / 17.01).",
    "DenseNet (k=40)": "the row is DenseNet-BC with L=190, k=40.",
    "Attention-452": "the survey gives 24.54% on CIFAR-100; the paper reports 20.45%.",
    "EfficientNet-B7": "fine-tuned from ImageNet weights on upscaled CIFAR images,"
    " not trained on CIFAR from scratch; the survey does not say so.",
}
NUMBER = {row: number for number, row in enumerate(NOTES, start=1)}


def figures(params, c10, c100):
    return f"{params / 1e6:.1f}M / {c10:.2f} / {c100:.2f}"


def measured(model_name):
    def own(r):  # the paper's network itself, not a smaller version of it
        paper = network_kwargs(model_name, {})
        return network_kwargs(model_name, r["model_kwargs"]) == paper

    runs = [r for r in ledger if r["model"] == model_name and r["kind"] == "train"]
    runs = [r for r in runs if own(r)]
    if not runs:
        return "not measured"
    best = max(runs, key=lambda r: r["created"])
    return f"{1 - best['test_acc']:.2%} ({best['profile']}, {best['dataset']})"


efficientnet = torchvision.models.efficientnet_b7(
    weights=None, num_classes=10
)  # nothing downloaded
rows = []
for row, (name, *survey) in SURVEY_TABLE_8.items():
    paper = rn.get_spec(name).paper if name else None
    paper_figures = (
        (paper.params, paper.cifar10_error, paper.cifar100_error)
        if paper
        else EFFICIENTNET_PAPER
    )
    model = rn.create_model(name) if name else efficientnet
    rows.append(
        [
            f"{row} [{NUMBER[row]}]" if row in NOTES else row,
            figures(*survey),
            figures(*paper_figures),
            f"{rn.count_parameters(model) / 1e6:.1f}M",
            measured(name) if name else "not trained here",
        ]
    )
headers = [
    "survey's row",
    "survey: params / C10 / C100 (%)",
    "paper",
    "our params",
    "our error",
]
rn.Table(headers, rows)

# %%
for row, note in NOTES.items():
    print(textwrap.fill(f"[{NUMBER[row]}] {row}: {note}", 80, subsequent_indent="    "))

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
# following Kornblith et al. 2019 and GPipe). It also uses far more compute.
# The paper lists 37B "FLOPs" per image for B7 on ImageNet, but counts
# multiply-adds; this book counts a multiply-add as two FLOPs, so that is
# about 74B in our units, against at most 18.6B (DenseNet-BC-190) for the
# CIFAR networks here. The survey's table puts the two kinds of number in one
# column without saying so.
#
# Wide ResNet, the one architecture of the table without a chapter, is short
# enough to show whole: a pre-activation unit, made wider. (Differs from
# paper: the official WRN code pads images by reflection for its random
# crops; the book's batches pad with zeros, in every chapter.)

# %%
from resnotes.models.wide_resnet import WideBasicUnit  # noqa: E402

print(inspect.getsource(WideBasicUnit.branch))
wrn = rn.create_model("wrn28_k10")
print(f"WRN-28-10: {rn.count_parameters(wrn):,} parameters", end=" ")
print(f"(paper: {rn.get_spec('wrn28_k10').paper.params / 1e6:.1f}M),", end=" ")
print(f"{rn.count_flops(wrn) / 1e9:.2f} GFLOPs per 32×32 image")

# %% [markdown]
# ## Beyond the table: squeeze-and-excitation and CBAM
#
# The survey lists attention *inside* a residual unit as a direction. Two
# light-weight modules became standard:
#
# - **Squeeze-and-excitation** (Hu, Shen and Sun, CVPR 2018) pools each
#   channel of the residual branch to one number, passes the vector through a
#   two-layer bottleneck MLP and a sigmoid, and rescales the channels with the
#   result. The paper's reduction is $r = 16$: a hidden layer of $C/16$ units.
#   (Differs from paper: ours is $\max(8, C/16)$ wide, the floor timm uses too,
#   since $C/16$ would leave one or two units on CIFAR's 16- and 32-channel
#   stages. That makes the hidden layer 8 units wide in every stage of a CIFAR
#   ResNet, an effective reduction of 2, 4 and 8 for 16, 32 and 64 channels.)
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


def with_attention(depth, attention):
    if attention is None:
        return PreActResNet(depth=depth)
    return preact_resnet_attention(depth=depth, attention=attention)


rows = []
for depth in (14, 20, 110):
    base = rn.count_parameters(PreActResNet(depth=depth))
    for attention in (None, "se", "cbam"):
        model = with_attention(depth, attention)
        params, flops = rn.count_parameters(model), rn.count_flops(model)
        name = f"pre-act ResNet-{depth}" + (
            f" + {attention.upper()}" if attention else ""
        )
        rows.append(
            [name, f"{params:,}", f"{params / base - 1:+.2%}", f"{flops / 1e6:.1f}"]
        )
rn.Table(["network", "parameters", "overhead", "MFLOPs / image"], rows)

# %% [markdown]
# A short training comparison, with the same seed, data and schedule for all
# three. Under `fast` and `paper` the network is ResNet-110; the CPU profiles
# use shallower networks.

# %% tags=["nbval-ignore-output"]
SE_DEPTHS = {"smoke": 8, "demo": 14, "fast": 110, "paper": 110}  # ResNet-14 on a CPU
depth = profile.pick(**SE_DEPTHS)
config = rn.make_config("preact_resnet110_se", profile)
data = rn.load_cifar("cifar10", **profile.data_kwargs())
print(data)
arms = {
    f"pre-act ResNet-{depth}": ("preact_resnet20", {"depth": depth}),
    f"pre-act ResNet-{depth} + SE": ("preact_resnet110_se", {"depth": depth}),
    f"pre-act ResNet-{depth} + CBAM": ("preact_resnet110_cbam", {"depth": depth}),
}
runs, trained = rn.train_and_record(arms, data, config)

# %% tags=["nbval-ignore-output"]
rn.learning_curves(runs)
plt.show()
plain, se, cbam = runs
print(rn.compare(runs, se, plain))
print(rn.compare(runs, cbam, plain))
rn.results_table(runs)

# %% [markdown]
# One seed and a short schedule cannot rank modules that the papers separate
# by a fraction of a point; the table is a check that both train as drop-in
# additions, and a measure of their cost in time.
#
# **What the committed run shows.** It is a `demo` run: ResNet-14, 8 epochs on
# 4,500 images, on a CPU, one seed. SE ends 1.8 points below the plain network
# on the 1,000 test images, within the test set's noise. CBAM ends 7.6 points
# below it, and there the 95% intervals do not overlap. That is a real
# difference for this run, but not evidence against CBAM: its model was chosen
# at epoch 6, where its validation accuracy (54.6% on 500 images) matched the
# plain network's, and its test accuracy fell short of its validation accuracy
# by 6 points, more than for the other two; at this scale one seed of one
# split decides a lot. The cost is clearer: SE took 1.2 times and CBAM 1.6
# times the plain network's time per epoch, for 0.01% and 1.0% more FLOPs (in
# four executions of this chapter on this machine, 1.15 to 1.3 times for SE and
# 1.6 to 2.0 for CBAM). On a
# CPU the gates cost more time than their FLOPs suggest: they are many small,
# memory-bound operations.
#

# %% [markdown]
# ## Accuracy against parameters and FLOPs
#
# The papers' figures (CIFAR-10 test error, original dataset, full schedules)
# and every training run in our ledger are drawn on the same cost axes, but in
# separate rows: the papers' points on top, ours below. Colours are families.
# Our points are the runs the chapters made (smaller networks, the `demo`
# subset and schedule, unless the table below says otherwise), numbered as in
# the ledger table at the end of this chapter, with their 95% interval. FLOPs
# are ours, counted for one 32×32 image with our implementation of each
# paper's network, since most papers do not give them. EfficientNet-B7 is left
# out: its numbers are not from CIFAR-scale training (see above).

# %% tags=["hide-input", "nbval-ignore-output"]
FAMILIES = {  # the module that defines a model -> its family's name, colour, chapter
    "preact_resnet": ("pre-act ResNet", "tab:blue", "1"),
    "pyramidnet": ("PyramidNet", "tab:orange", "2"),
    "densenet": ("DenseNet", "tab:green", "3"),
    "attention": ("Attention", "tab:red", "4"),
    "stochastic_depth": ("ResNet, stoch. depth", "tab:purple", "5"),
    "wide_resnet": ("WRN", "tab:brown", "6"),
    "se_cbam": ("SE / CBAM", "tab:pink", "6"),
}


def family(name):
    return FAMILIES[rn.get_spec(name).factory.__module__.rsplit(".", 1)[-1]]


def chapter(record):
    """The chapter whose comparison a run belongs to (this one's plain ResNet
    baseline is the depth it trains SE and CBAM at)."""
    depth = record["model_kwargs"].get("depth")
    if record["model"] == "preact_resnet20" and depth == SE_DEPTHS[record["profile"]]:
        return "3, 6" if record["profile"] in ("smoke", "demo") else "6"
    return family(record["model"])[2]


def recipe(record):
    s = record["schedule"]
    return record["epochs"], s["batch_size"], s["lr"], s["schedule"], s["nesterov"]


def profile_recipe(record):
    c = rn.make_config(record["model"], record["profile"])
    return c.epochs, c.batch_size, c.lr, c.schedule, c.nesterov


# The current runs: the latest of each network, profile and seed, of its
# profile's recipe; the others are superseded.
ledger = rn.load_ledger()  # read again: this chapter's own runs are in it now
latest, superseded = {}, []
for record in (r for r in ledger if r["kind"] == "train"):  # oldest first
    if record["profile"] != "custom" and recipe(record) != profile_recipe(record):
        superseded.append((record, "an older recipe of its profile"))
        continue
    network = rn.network_name(record["model"], record["model_kwargs"])
    key = (network, record["profile"], record["dataset"], record["seed"])
    if key in latest:
        superseded.append((latest[key], "run again later"))
    latest[key] = record
networks = {}  # (network, profile, dataset) -> its current runs, seed by seed
for (network, profile_name, dataset, _), record in sorted(latest.items()):
    networks.setdefault((network, profile_name, dataset), []).append(record)
current = [r for records in networks.values() for r in records]
datasets = sorted({r["dataset"] for r in current})
hardware = sorted(
    {f"{r['hardware']['device']} × {r['hardware']['count']}" for r in current}
)


def label_points(ax, points, gap=2.8):
    """Number each (x, y, number) point on a log x axis. Points within 0.3 decades
    of each other share a column of numbers to their right, at least ``gap``
    apart, each joined to its point by a thin line."""
    groups = []
    for x, y, number in sorted(points):
        if groups and np.log10(x / groups[-1][-1][0]) < 0.3:
            groups[-1].append((x, y, number))
        else:
            groups.append([(x, y, number)])
    top = -np.inf
    for group in groups:
        column = 1.6 * max(x for x, _, _ in group)
        label_y = -np.inf
        for x, y, number in sorted(group, key=lambda point: point[1]):
            label_y = max(y, label_y + gap)
            ax.annotate(
                str(number),
                (x, y),
                xytext=(column, label_y),
                va="center",
                fontsize=8,
                arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5},
            )
        top = max(top, label_y)
    ax.set_ylim(top=max(ax.get_ylim()[1], top + gap / 2))


papers = [name for name in rn.list_models() if rn.get_spec(name).paper]
papers = [name for name in papers if rn.get_spec(name).paper.cifar10_error is not None]
costs = {}
for name in papers:
    model = rn.create_model(name)
    costs[name] = (rn.count_parameters(model), rn.count_flops(model))
fig, axes = plt.subplots(
    2,
    2,
    figsize=(7.5, 6.4),
    constrained_layout=True,
    sharex="col",
    height_ratios=[3, 2],
)
for column, (index, label) in enumerate(
    [(0, "parameters"), (1, "FLOPs per 32×32 image")]
):
    top, bottom = axes[0, column], axes[1, column]
    for name in papers:
        family_name, colour, _ = family(name)
        accuracy = 100 - rn.get_spec(name).paper.cifar10_error
        top.scatter([costs[name][index]], [accuracy], color=colour, label=family_name)
    top.set_title("the papers: CIFAR-10,\nfull schedules")
    numbers = []  # (x, y, number): each network's number goes by its best run
    for number, runs_of_network in enumerate(networks.values(), start=1):
        for record in runs_of_network:
            x = record["params"] if index == 0 else record["flops_per_image"]
            y = 100 * record["test_acc"]
            low, high = wilson_interval(record["test_acc"], record["test_images"])
            error = [[y - 100 * low], [100 * high - y]]
            colour = family(record["model"])[1]
            bottom.errorbar([x], [y], yerr=error, fmt="^", color=colour, alpha=0.7)
        numbers.append((x, max(100 * r["test_acc"] for r in runs_of_network), number))
    label_points(bottom, numbers)
    runs_drawn = sum(len(v) for v in networks.values())
    shown = f"{runs_drawn} runs of {len(networks)} networks"
    bottom.set_title(f"ours: {shown},\nnumbered as in the table below")
    bottom.set_xscale("log")
    bottom.set_xlabel(label)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
axes[0, 0].set_ylabel("test accuracy (%)")
axes[1, 0].set_ylabel("test accuracy (%)")
# One entry per family drawn in either row (circles: the papers; triangles: ours).
drawn = [family(name) for name in papers]
drawn += [family(r["model"]) for runs in networks.values() for r in runs]
handles = {
    name: Line2D([], [], color=colour, marker="o", linestyle="", label=name)
    for name, colour, _ in drawn
}
profiles = ", ".join(sorted({profile for _, profile, _ in networks}))
ours = f"our runs: {'; '.join(datasets)}, profile {profiles}; {'; '.join(hardware)}"
fig.legend(
    handles=list(handles.values()),
    loc="outside lower center",
    ncols=4,
    title=ours,
    title_fontsize=9,
)
plt.show()

# %% [markdown]
# Read the top row as the papers' claims and the bottom row as what this
# project has measured: the current runs of chapters 1 to 6, this chapter's
# included, and the runs of more seeds made from the command line (one point
# per run, numbered by network). A run from a short CPU profile reaches far lower
# accuracy than the papers' points; that is the schedule and the subset, not
# the architecture, so compare our points only with each other, and only where
# the differences are beyond the noise. Among the papers' points, accuracy grows with
# parameters only loosely: at about 1.7M parameters, the networks of this book
# span almost two points of error (6.37% for ResNet-110 against 4.62% for
# PyramidNet-110 with α=48, the official README's figure; the paper's Table 4
# mean is 4.58%), and DenseNet-BC-100 beats ResNet-110 with less
# than half the parameters.
#
# ## The ledger
#
# The networks of the figure's bottom row, numbered as there, with the chapter
# whose comparison they belong to, and every seed the ledger holds of each. The
# chapters add their runs when they run under `demo`, `fast` or `paper`; the
# command line adds one with `--ledger results`. A single run's interval is
# the test set's 95% Wilson interval; for several seeds, each seed's accuracy
# is given, and their spread is what another seed might do. The time per epoch
# is each run's median over the epochs after the first, and for several seeds
# the median over the seeds, so it can differ from the time a chapter quotes
# for its own run (seed 0). Records of kind
# `bench` (the GPU check's timed epochs) are not results and are left out, and
# so are superseded records, listed below the table: the runs of an older recipe
# of their profile, and runs made again later.


# %% tags=["nbval-ignore-output"]
def accuracies(records):
    if len(records) == 1:
        return accuracy_with_interval(records[0]["test_acc"], records[0]["test_images"])
    each = ", ".join(f"{100 * r['test_acc']:.1f}" for r in records)
    mean = 100 * sum(r["test_acc"] for r in records) / len(records)
    return f"{each} (mean {mean:.1f})"


rows = []
for number, ((network, profile_name, _), records) in enumerate(
    networks.items(), start=1
):
    first = records[0]
    run = f"{profile_name}, {first['epochs']} epochs, {first['train_images']:,} images"
    times = sorted(r["seconds_per_epoch"] for r in records)
    rows.append(
        [
            number,
            network,
            chapter(first),
            run,
            ", ".join(str(r["seed"]) for r in records),
            accuracies(records),
            f"{times[len(times) // 2]:.0f} s",  # the median
        ]
    )
headers = ["#", "network", "chapter", "run", "seeds", "test accuracy", "s / epoch"]
commits = sorted({r["git_commit"][:12] for r in current})
caption = (
    f"{'; '.join(datasets)}, {current[0]['test_images']:,} test images; "
    f"{'; '.join(hardware)}; commits {', '.join(commits)}"
    if current
    else "the ledger has no current training runs"
)
display(rn.Table(headers, rows, caption=caption))
for record, why in superseded:
    name = rn.network_name(record["model"], record["model_kwargs"])
    print(f"superseded ({why}): {name}, {record['profile']}, seed {record['seed']},")
    print(f"    recorded {record['created'][:10]}")

# %% [markdown]
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
# epochs). Its best figures come from two different networks: 2.86% error on
# CIFAR-10 for a 26-layer 2×96d network (average of 5 runs), and 15.85% on
# CIFAR-100 for a 29-layer network of ResNeXt units (2×4×64d).
#
# **PyramidSepDrop** (Yamada, Iwamura and Kise, "Deep Pyramidal Residual
# Networks with Separated Stochastic Depth", 2016) brings stochastic depth
# (Chapter 5) to PyramidNet (Chapter 2). A pyramidal unit's output has two
# parts: the channels that match the shortcut, and the new, zero-padded ones.
# Separated stochastic depth drops the two parts with independent gates.
# The paper reports 16.18% error on CIFAR-100, against 18.29% for its
# PyramidNet baseline.
#
# %% tags=["nbval-ignore-output"]
print(rn.chapter_time())
