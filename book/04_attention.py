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
# # 4. The Residual Attention Network: trunk, soft mask, and 1 + M
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/04_attention.ipynb)
#
# Wang, Jiang, Qian, Yang, Li, Zhang, Wang and Tang ("Residual Attention
# Network for Image Classification", CVPR 2017) add *attention* to a residual
# network: a second branch that looks at the whole feature map at low
# resolution and decides, for every channel and position, how much of the
# first branch's features to let through. Stacking such modules naively
# hurts, and the paper's fix is another residual connection, this time around
# the attention itself. This chapter reproduces the survey's section 3.4, its
# formula (3) and its Table 7. The paper gives its CIFAR networks only as a
# depth formula and parameter counts, so we write down every choice we had
# to make.

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the training runs below took 65 minutes on 2
# > CPU cores (measured), 37 of them in three slow epochs (the other 17 averaged 100 s).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes @ git+https://github.com/resnotes/resnotes@v0.2.0"
    pass

# %% tags=["nbval-ignore-output"]
import inspect

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import display

from resnotes.data import load_cifar
from resnotes.models import count_flops, count_parameters, get_spec
from resnotes.models.attention import AttentionModule, SoftMaskBranch, attention_net
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile, paper_recipe
from resnotes.report import Table, banner, results_table
from resnotes.train import fit

profile = get_profile()
print(banner(profile))

# %% [markdown]
# ## The two branches
#
# An attention module reads an input $x$ and computes two things from it:
#
# - the **trunk** $T(x)$: $t$ pre-activation bottleneck residual units, the
#   ordinary feature processing;
# - the **soft mask** $M(x)$: a bottom-up, top-down hourglass. It max-pools
#   down to a coarse resolution, where each position sees a large part of the
#   image, with $r$ residual units after each pooling; then it interpolates
#   back up, adding skip connections from the way down, and ends with two
#   BN-ReLU-conv1×1 layers and a sigmoid. $M(x)$ has the shape of $T(x)$, and
#   every value lies in $(0, 1)$.
#
# Before the split there are $p$ residual units, and $p$ more after the
# two branches are combined. The paper uses $p = 1$, $t = 2$, $r = 1$.
# Here is the module's `forward`, one line per step:

# %%
print(inspect.getsource(AttentionModule.forward))

# %% [markdown]
# The mask branch must work on the 32×32, 16×16 and 8×8 inputs of the three
# CIFAR stages. The paper's ImageNet network pools each stage down to the same
# 7×7. We keep that rule for CIFAR and pool down to 4×4: three times in
# stage 1, twice in stage 2, once in stage 3. We record the shape after every
# step of each stage's mask branch with forward hooks on the real modules of
# Attention-56:

# %%
model = attention_net(depth=56).eval()
steps_per_stage, hooks = [], []
for stage in model.stages:
    module = next(m for m in stage if isinstance(m, AttentionModule))
    steps = []
    branch = module.mask
    hooks.append(branch.register_forward_pre_hook(lambda _m, args, steps=steps: steps.append(("input", tuple(args[0].shape)))))
    for name, child in [*(("down", d) for d in branch.down), *(("skip", s) for s in branch.skips), ("bottom", branch.bottom), *(("up", u) for u in branch.up), ("head", branch.head)]:
        hooks.append(child.register_forward_hook(lambda _m, _i, out, name=name, steps=steps: steps.append((name, tuple(out.shape)))))
    hooks.append(branch.register_forward_hook(lambda _m, _i, out, steps=steps: steps.append(("sigmoid: M(x)", tuple(out.shape)))))
    steps_per_stage.append(steps)
with torch.no_grad():
    model(torch.zeros(1, 3, 32, 32))
for hook in hooks:
    hook.remove()
rows = []
for stage_index, steps in enumerate(steps_per_stage):
    rows += [[stage_index + 1, name, f"{c} × {h} × {w}"] for name, (_, c, h, w) in steps]
Table(["stage", "step of the mask branch (in call order)", "output C × H × W"], rows)

# %% [markdown]
# The same shapes, drawn: the height of each step is its resolution. The
# trunk stays at full resolution while the mask goes down to 4×4 and comes
# back up; the dotted lines are the skip connections that join mask features
# of the same size.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), constrained_layout=True, sharey=True)
for stage_index, (ax, steps) in enumerate(zip(axes, steps_per_stage)):
    path = [(name, shape[-1]) for name, shape in steps if name != "skip"]
    ax.step(range(len(path)), [size for _, size in path], where="mid", marker="o", label="mask branch")
    ax.plot([0, len(path) - 1], [path[0][1]] * 2, color="grey", ls="--", label="trunk branch")
    for position, (name, size) in enumerate(path):
        ax.annotate(name.split(":")[0], (position, size), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7, rotation=45)
    sizes = [size for _, size in path]
    for size in {s for s in sizes[1:-1] if sizes.count(s) > 1}:
        first, last = sizes.index(size), len(sizes) - 1 - sizes[::-1].index(size)
        ax.plot([first, last], [size, size], ls=":", color="black", lw=1)
    ax.set_xticks([])
    ax.set_yscale("log", base=2)
    ax.set_yticks([4, 8, 16, 32], ["4", "8", "16", "32"])
    ax.set_title(f"stage {stage_index + 1}: {path[0][1]}×{path[0][1]} input", fontsize=10)
    ax.grid(alpha=0.3)
axes[0].set_ylabel("resolution (H = W)")
axes[0].legend(fontsize=8, loc="lower left")
plt.show()

# %% [markdown]
# ## Formula (3): attention residual learning
#
# How should $M$ and $T$ be combined? The obvious choice, *naive attention
# learning* (NAL), multiplies: $H(x) = M(x) \cdot T(x)$. The paper shows that
# it fails when modules are stacked: every mask value is below 1, so each
# module dims the features, and after many modules little signal, and little
# gradient, is left. Its fix is *attention residual learning* (ARL):
#
# $$
# H_{i,c}(x) = \bigl(1 + M_{i,c}(x)\bigr) \cdot T_{i,c}(x),
# $$
#
# for every position $i$ and channel $c$. As in a residual unit, the identity
# is the default: where the mask is 0, the module passes $T(x)$ through
# unchanged, and the mask can only *enhance* features, by up to a factor of 2.
#
# **A misprint in the survey.** The survey prints formula (3) as
# $H(x) = (1 + M(x) * F(x))$, which would add the constant 1 to the masked
# features. The paper's formula, above, multiplies $F(x) = T(x)$ by
# $(1 + M(x))$. Our code follows the paper:

# %%
print(inspect.getsource(AttentionModule.combine))

# %% [markdown]
# And here is the property that makes ARL an identity-friendly design, shown
# on a real module. We replace its mask branch by one that outputs zeros: the
# module's output is then exactly what its units compute without attention.
# Under NAL, the same zero mask erases everything.

# %%
torch.manual_seed(0)
module = AttentionModule(64, input_size=32).eval()
x = torch.randn(2, 64, 32, 32)
with torch.no_grad():
    trunk = module.trunk(module.pre(x))
    zero_mask = torch.zeros_like(trunk)
    print("ARL, M(x) = 0:  H(x) equals T(x) exactly:", torch.equal(module.combine(trunk, zero_mask), trunk))
    module.mask.forward = lambda features: torch.zeros_like(features)  # the whole module, mask forced to 0
    print("ARL module with its mask forced to 0 equals post(T(pre(x))):", torch.equal(module(x), module.post(trunk)))
    module.attention = "nal"
    print("NAL, M(x) = 0:  H(x) is all zeros:", torch.equal(module.combine(trunk, zero_mask), zero_mask))

# %% [markdown]
# ## The CIFAR networks, and Table 7 live
#
# The paper's CIFAR networks stack $m$ modules in each of three stages. Each
# module adds $p + t + p$ bottleneck units (3 layers each) to the trunk's
# depth, and a stem, a classifier and six more units add 20 layers:
#
# $$
# \text{depth} = 9m(2p + t) + 20, \qquad\text{so } 36m + 20 \text{ for } p=1,\ t=2.
# $$
#
# Attention-56 has $m = 1$, Attention-92 $m = 2$ and Attention-236 $m = 6$.
# Attention-452 uses $p = 2$, $t = 4$, $r = 3$ with $m = 6$. Everything else
# is our choice, and the module's docstring lists each one:
#
# - **Widths.** Bottleneck units of width 16, 32 and 64 in the three stages,
#   which output 64, 128 and 256 channels, as in the pre-activation
#   ResNet-164. Popular PyTorch ports use 128 to 1024 channels, which gives
#   networks 6 to 10 times larger than the paper's counts.
# - **The six extra units.** One before each stage (it downsamples), and three
#   after the last, at 8×8 and 256 channels.
# - **The mask.** Pooled down to 4×4, one residual unit on each skip
#   connection, bilinear upsampling, and $\max(2, r)$ units at the bottom.
#   The official prototxt (ImageNet, $r = 1$) has two units there.
# - **The stem.** A 3×3 convolution with 16 channels, no pooling.
#
# We count our networks beside the paper's figures, with FLOPs for one
# 32×32 image. The error columns are the paper's.

# %%
paper = {  # Wang et al. 2017, CIFAR comparison: CIFAR-10 / CIFAR-100 error (%)
    "attention92": (4.99, 21.71),
    "attention236": (4.14, 21.16),
    "attention452": (3.90, 20.45),
}
rows = []
for name, (c10, c100) in paper.items():
    spec = get_spec(name)
    net = spec.build()
    ours = count_parameters(net)
    hyper = ", ".join(f"{k}={spec.kwargs.get(k, default)}" for k, default in (("p", 1), ("t", 2), ("r", 1)))
    rows.append([f"Attention-{spec.kwargs['depth']}", hyper, len(net.attention_modules()) // 3, f"{ours:,}", f"{spec.paper_params / 1e6:.1f}M",
                 f"{(ours - spec.paper_params) / spec.paper_params:+.1%}", f"{count_flops(net) / 1e9:.2f}", f"{c10:.2f}", f"{c100:.2f}"])  # fmt: skip
Table(["network", "p, t, r", "m", "our params", "paper", "gap", "GFLOPs / image", "C10 error (%)", "C100 error (%)"], rows)

# %% [markdown]
# All three are within 4% of the paper's counts.
#
# **A discrepancy in the survey.** The survey's Table 7 gives Attention-452's
# CIFAR-100 error as 24.54%. The paper reports **20.45%**, the figure in the
# table above.
#
# **How much one open detail matters.** The paper defines $r$ as the number
# of units between adjacent pooling layers of the mask, but its only
# published network ($r = 1$) has two units at the bottom. For $r = 1$ every
# reading agrees. For Attention-452 ($r = 3$) they do not:

# %%
rows = []
for reading, bottom in [("max(2, r) = 3 (ours)", None), ("r + 1 = 4", 4), ("2r = 6", 6)]:
    ours = count_parameters(attention_net(depth=452, p=2, t=4, r=3, bottom_units=bottom))
    rows.append([reading, f"{ours:,}", f"{(ours - 8.6e6) / 8.6e6:+.1%}"])
Table(["units at the bottom of the mask (Attention-452)", "parameters", "gap to the paper's 8.6M"], rows)

# %% [markdown]
# Of these three readings, only ours lands within 5% of the paper's 8.6M, which is why we chose
# it; `attention_net(..., bottom_units=...)` lets you try the others.
#
# ## ARL against NAL
#
# The paper trains Attention-56, 92, 128 and 164 both ways on CIFAR-10 and
# finds ARL better at every depth, with a gap that grows with depth: 5.52%
# against 5.89% error for Attention-56, and 4.31% against 7.18% for
# Attention-164. We train ARL and NAL at the same depth, with the same seed,
# data and schedule. Under `fast` and `paper` this is Attention-92; under
# `demo` it is Attention-56, the smallest of the paper's networks; under
# `smoke`, a tiny network with $p = 0$, $t = 1$ (depth 29). Under `paper`,
# the schedule is the paper's: batch 64, Nesterov momentum, and the learning
# rate divided by 10 at 64k and 96k of 160k iterations (about 205 epochs).

# %% tags=["nbval-ignore-output"]
arch = profile.pick(smoke={"depth": 29, "p": 0, "t": 1}, demo={"depth": 56}, fast={"depth": 92}, paper={"depth": 92})
config = profile.train_config(**profile.pick(smoke={}, demo={}, fast={}, paper=paper_recipe("attention92")))
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())
runs, trained = {}, {}
for attention in ("arl", "nal"):
    name = f"Attention-{arch['depth']}, {attention.upper()}"
    torch.manual_seed(0)
    trained[attention] = attention_net(**arch, attention=attention)
    runs[name] = fit(trained[attention], data, config, name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
results_table(runs)

# %% [markdown]
# These are our numbers, for the profile, data and hardware in the caption;
# the paper's are quoted above. One seed of a short schedule can show a
# trend, not settle a difference of a few tenths of a point. In the committed
# `demo` run, ARL ends ahead on validation (55.2% against 52.4%) and about
# level on the 1,000 test images (53.4% against 52.9%). The first three epochs
# of its log are slow because other work shared the machine then; the table's
# median time per epoch is not affected. The paper's
# argument is about depth: with more modules, the product of many masks
# below 1 shrinks NAL's features further. The next cell measures this
# directly in the two trained networks: the ratio of the output's size to
# the trunk's, $\lVert H \rVert / \lVert T \rVert$, for every module, on test
# images. Under ARL it is at least 1, since $1 + M \geq 1$; under NAL it is
# at most 1.

# %% tags=["nbval-ignore-output"]
picked = torch.randperm(len(data.test_labels), generator=torch.Generator().manual_seed(0))[:64]
images = (data.test_images[picked].float() / 255 - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(data.std).view(1, 3, 1, 1)
gains = {}
for attention, net in trained.items():
    net = net.float().cpu().eval()
    ratios = []
    for module in net.attention_modules():

        def combine(trunk, mask, original=module.combine, ratios=ratios):
            out = original(trunk, mask)
            ratios.append((out.norm() / trunk.norm()).item())
            return out

        module.combine = combine  # this instance only; removed below
    with torch.no_grad():
        net(images)
    for module in net.attention_modules():
        del module.combine
    gains[attention] = ratios
fig, ax = plt.subplots(figsize=(6.5, 3.4), constrained_layout=True)
for attention, values in gains.items():
    ax.plot(range(1, len(values) + 1), values, marker="o", label=attention.upper())
ax.axhline(1, color="black", lw=0.8)
ax.set_xlabel("attention module")
ax.set_ylabel("‖H(x)‖ / ‖T(x)‖")
ax.set_title(f"Attention-{arch['depth']}, trained under profile {profile.name!r}, 64 test images", fontsize=10)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
for attention, values in gains.items():
    print(f"{attention.upper()}: ‖H‖/‖T‖ per module: " + ", ".join(f"{v:.2f}" for v in values))

# %% [markdown]
# ## What the masks look at
#
# Finally, the masks of the trained ARL network. For the first attention
# module of each stage, we average $M(x)$ over the channels and upsample it to
# 32×32, then overlay it on the test image. Bright means the mask enhances
# the trunk's features there, by up to a factor of 2.

# %% tags=["nbval-ignore-output"]
net = trained["arl"].float().cpu().eval()
first_modules = [next(m for m in stage if isinstance(m, AttentionModule)) for stage in net.stages]
masks = []
hooks = [module.mask.register_forward_hook(lambda _m, _i, out: masks.append(out.mean(1, keepdim=True))) for module in first_modules]
shown = 6
# The first test image of each of six classes.
examples = [int((data.test_labels == c).nonzero()[0]) for c in range(shown)]
inputs = (data.test_images[examples].float() / 255 - torch.tensor(data.mean).view(1, 3, 1, 1)) / torch.tensor(data.std).view(1, 3, 1, 1)
with torch.no_grad():
    predictions = net(inputs).argmax(1)
for hook in hooks:
    hook.remove()
fig, axes = plt.subplots(4, shown, figsize=(1.9 * shown, 7.8), constrained_layout=True)
pictures = data.test_images[examples].permute(0, 2, 3, 1).numpy()
for column in range(shown):
    axes[0, column].imshow(pictures[column])
    label, guess = data.classes[data.test_labels[examples[column]]], data.classes[predictions[column]]
    axes[0, column].set_title(f"{label}\n(predicted: {guess})", fontsize=8)
    for row, mask in enumerate(masks, start=1):
        heat = F.interpolate(mask[column : column + 1], size=(32, 32), mode="bilinear", align_corners=False)[0, 0]
        axes[row, column].imshow(pictures[column])
        axes[row, column].imshow(heat.numpy(), cmap="inferno", alpha=0.6)
        axes[row, column].set_title(f"stage {row}: M in [{heat.min():.2f}, {heat.max():.2f}]", fontsize=7)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"Soft masks of Attention-{arch['depth']} (ARL), profile {profile.name!r}, {data.name} test images", fontsize=10)
plt.show()

# %% [markdown]
# Each mask has its own colour range (the titles give it), so compare the
# patterns, not the brightness, across stages. In the committed `demo` run
# the masks stay close to 0.5 (between about 0.43 and 0.55), so they change
# the trunk's features by only a few percent around the factor 1.5, but their
# pattern already follows the objects: the car's outline in stage 1, for
# example. The paper shows masks from
# ImageNet networks trained for days, where the stage-1 mask outlines the
# object and suppresses the background. A network trained under a short
# profile shows only what it has learned so far, and the deeper masks, at
# 16×16 and 8×8 before upsampling, are necessarily coarse.
#
# **Summing up.** An attention module multiplies its trunk's features by
# $1 + M(x)$, where the soft mask $M(x)$ comes from a bottom-up, top-down
# hourglass over the same input. The 1 makes the module's default the
# identity on the trunk, which is what lets the paper stack dozens of modules
# (Attention-452) where naive attention learning degrades.
