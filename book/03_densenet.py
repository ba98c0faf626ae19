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
# # 3. DenseNet and DenseNet-BC: concatenate, don't add
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/03_densenet.ipynb)
#
# A residual unit *adds* what it computes to its input. Huang, Liu, van der
# Maaten and Weinberger ("Densely Connected Convolutional Networks", CVPR 2017)
# asked what happens if each layer instead *concatenates* its output to
# everything before it, so that every later layer can read every earlier
# feature map directly. This chapter reproduces the survey's section 3.3 and
# its Table 6. It follows the channel count through a block, counts the
# paper's networks live, looks inside a trained network for the feature reuse
# the paper reports, and answers the question DenseNet users ask most: why
# does it need so much memory, and how do we get it back?

# %% [markdown]
# > **Running this chapter.** In Colab, choose Runtime > Change runtime type > T4 GPU
# > (the notebook asks for it); the chapter then runs the `fast` profile, not yet
# > measured on a GPU. A CPU runs `demo`: the training runs below took about 14 minutes
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
import torch.nn.functional as F
from IPython.display import display

from resnotes.analysis import dense_feature_reuse, training_step_memory
from resnotes.data import load_cifar
from resnotes.models import count_flops, count_parameters, get_spec
from resnotes.models.densenet import DenseBlock, DenseLayer, densenet_bc
from resnotes.models.preact_resnet import preact_resnet
from resnotes.plot import learning_curves
from resnotes.profiles import get_profile, paper_recipe
from resnotes.report import Table, banner, results_table
from resnotes.runtime import hardware_description, pick_device
from resnotes.train import fit

profile = get_profile()
print(banner(profile))

# %% [markdown]
# ## Addition against concatenation
#
# Write $x_\ell$ for the output of layer $\ell$ and $H_\ell$ for what the
# layer computes. The two families connect layers differently:
#
# $$
# \text{ResNet:}\quad x_\ell = H_\ell(x_{\ell-1}) + x_{\ell-1},
# \qquad\qquad
# \text{DenseNet:}\quad x_\ell = H_\ell\bigl([x_0, x_1, \dots, x_{\ell-1}]\bigr),
# $$
#
# where $[\cdot]$ concatenates along the channels. In a dense block, every
# $H_\ell$ outputs the same small number $k$ of channels, the **growth rate**.
# If the block input has $k_0$ channels, layer $\ell$ therefore reads
# $k_0 + (\ell - 1)k$ channels, and the block outputs $k_0 + nk$ channels
# after $n$ layers. A ResNet unit keeps its width; a dense block grows
# linearly. The block's code is exactly this bookkeeping:

# %%
print(inspect.getsource(DenseBlock.forward))

# %% [markdown]
# Each layer is a pre-activation composite: BN-ReLU-conv3×3 in the plain
# DenseNet. DenseNet-**B** adds a **b**ottleneck, a 1×1 convolution to $4k$
# channels before the 3×3, because the input of a late layer is wide.
# DenseNet-**C** **c**ompresses: the transition layer between two blocks
# (BN-ReLU-conv1×1, then 2×2 average pooling) maps $m$ channels to
# $\lfloor\theta m\rfloor$, with $\theta = 0.5$. DenseNet-BC does both, and
# its stem has $2k$ channels instead of 16. Here is a layer:

# %%
print(inspect.getsource(DenseLayer.forward))

# %% [markdown]
# We now measure the width with forward hooks on the real model: for each
# layer in the first block of DenseNet-BC-100, the number of channels it
# receives, for three growth rates. A pre-activation ResNet-164 stage, where
# every unit reads and writes 64 channels, is drawn for comparison.

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.8), constrained_layout=True)
measured_widths = {}
for k in (12, 24, 40):
    model = densenet_bc(depth=100, growth_rate=k).eval()
    widths = []
    hooks = [layer.register_forward_hook(lambda _m, inputs, _o: widths.append(sum(f.shape[1] for f in inputs[0]))) for layer in model.blocks[0].layers]
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for hook in hooks:
        hook.remove()
    measured_widths[k] = widths
    ax.plot(range(1, len(widths) + 1), widths, marker="o", markersize=3, label=f"DenseNet-BC-100, k={k}: {widths[0]} → {widths[-1]}")
resnet = preact_resnet(depth=164, bottleneck=True)
resnet_widths = [unit.conv1.in_channels for unit in resnet.stages[0]][1:17]  # the first unit reads the 16-channel stem
ax.plot(range(1, len(resnet_widths) + 1), resnet_widths, ls="--", color="black", label="pre-act ResNet-164, stage 1 (addition)")
ax.set_xlabel("layer in the first block")
ax.set_ylabel("input channels")
ax.set_title("Concatenation widens every layer's input by k", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
plt.show()
for k, widths in measured_widths.items():
    print(f"k={k}: layer inputs {widths[:4]} ... {widths[-1]}; block output {widths[-1] + k} = 2k + 16k")

# %% [markdown]
# The lines are straight with slope $k$: the growth rate is the number of new
# channels each layer adds to the shared "collective knowledge" of the
# block. A small $k$ is enough because each layer can read all of it. Note
# what the figure implies for memory: the block's input to layer $\ell$ is a
# *new* tensor of $k_0 + (\ell-1)k$ channels, and a naive implementation keeps
# all of them, as well as their batch-normalised copies, for the backward
# pass. That is $O(n^2)$ memory per block, a point we return to below.
#
# ## Table 6, live
#
# The survey's Table 6 lists the DenseNets below. We count each one's
# parameters with our models, beside the paper's figure, with the forward
# FLOPs of one 32×32 image from `torch.utils.flop_counter`. The error columns
# are the paper's, on CIFAR with standard augmentation (C10+ and C100+ in the
# paper's Table 2).

# %%
paper_errors = {  # Huang et al. 2017, Table 2: C10+ / C100+ error (%)
    "densenet40_k12": (5.24, 24.42),
    "densenet_bc100_k12": (4.51, 22.27),
    "densenet_bc250_k24": (3.62, 17.60),
    "densenet_bc190_k40": (3.46, 17.18),
}
rows = []
for name, (c10, c100) in paper_errors.items():
    spec = get_spec(name)
    model = spec.build()
    ours = count_parameters(model)
    kind = "DenseNet-BC" if spec.factory is densenet_bc else "DenseNet"
    rows.append([
        kind, spec.kwargs["depth"], spec.kwargs["growth_rate"], f"{ours:,}", f"{spec.paper_params / 1e6:.1f}M",
        f"{(ours - spec.paper_params) / spec.paper_params:+.1%}", f"{count_flops(model) / 1e9:.2f}", f"{c10:.2f}", f"{c100:.2f}",
    ])  # fmt: skip
Table(["network", "L", "k", "our params", "paper", "gap", "GFLOPs / image", "C10+ error (%)", "C100+ error (%)"], rows)

# %% [markdown]
# All four counts are within 4% of the paper. The only visible gap, -3.9%
# for DenseNet-BC-100, is the paper's rounding: the official code also builds
# 0.769M parameters, printed as 0.8M.
#
# The table makes DenseNet's trade-off plain. DenseNet-BC-100 matches a
# ResNet-110 (1.7M parameters, 6.4% error in Chapter 1's paper figures) with
# fewer than half the parameters and better accuracy. But it costs about as
# many FLOPs, and, as we measure next, far more memory and time per FLOP:
# concatenation moves a lot of data, and many thin convolutions use the
# hardware poorly.
#
# ## Memory, and how to get it back
#
# In the naive implementation every layer allocates its concatenated input,
# its batch-normalised copy and the ReLU output, each $k_0 + (\ell-1)k$
# channels wide, and autograd keeps them until the backward pass. Pleiss et
# al. ("Memory-Efficient Implementation of DenseNets", 2017) observed that
# these tensors are cheap to compute and expensive to store. Their fix, in
# our `memory_efficient=True` mode, is checkpointing: the concatenation, the
# first BN, the ReLU and the first convolution are *recomputed* during the
# backward pass instead of being stored. Only the layers' own $k$-channel
# outputs are kept, so memory grows linearly with depth instead of
# quadratically.
#
# The recomputation runs batch normalisation a second time. It must use the
# same batch statistics (it does: the batch is the same) and must not update
# the running averages twice; the code passes throw-away copies the second
# time, and the tests check that both modes leave identical running
# statistics, outputs and gradients.
#
# We measure the peak memory of one training step (forward and backward) of
# DenseNet-BC-100 with $k = 12$ at batch 64, as in the issue the paper's users
# raised. On a GPU we read `torch.cuda.max_memory_allocated`. On a CPU there
# is no allocator counter, so `resnotes.analysis.TensorMemoryTracker`
# intercepts every operator and adds up the bytes of the tensors that are
# alive: the peak of that sum is the memory the step needs beyond the weights
# and the input.

# %% tags=["nbval-ignore-output"]
device = pick_device()
batch = profile.pick(smoke=8, demo=64, fast=64, paper=64)
model = densenet_bc(depth=100, growth_rate=12).to(device)
images, labels = torch.randn(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)


def timed_step():
    """Seconds for one forward and backward pass, after one untimed warm-up pass."""
    for _ in range(2):
        start = time.perf_counter()
        F.cross_entropy(model(images), labels).backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        model.zero_grad(set_to_none=True)
    return time.perf_counter() - start


measured = {}
for efficient in (False, True):
    model.memory_efficient = efficient
    measured[efficient] = (training_step_memory(model, batch_size=batch), timed_step())
rows = [[("memory-efficient" if eff else "plain"), f"{peak / 2**20:,.0f} MiB", f"{seconds:.2f} s"] for eff, (peak, seconds) in measured.items()]
display(Table(["DenseNet-BC-100 (k=12)", f"peak memory, one step at batch {batch}", "time of that step"], rows,
              caption=f"{hardware_description(device)}; torch {torch.__version__}"))  # fmt: skip
ratio = measured[False][0] / measured[True][0]
print(f"memory-efficient mode needs {ratio:.2f}x less memory (target: at least 2x) and "
      f"{measured[True][1] / measured[False][1]:.2f}x the time of one step")  # fmt: skip

# %% [markdown]
# The saving grows with depth, because the naive mode's memory is quadratic
# in the number of layers per block and the efficient mode's is linear. We
# measure both modes at several depths at a fixed batch size (memory is
# proportional to the batch size, so one batch size suffices):

# %% tags=["nbval-ignore-output"]
depths = profile.pick(smoke=[16, 28, 40], demo=[40, 64, 88, 100, 124], fast=[40, 64, 88, 100, 124, 148], paper=[40, 64, 88, 100, 124, 148])
small_batch = profile.pick(smoke=2, demo=16, fast=64, paper=64)
curves = {False: [], True: []}
for depth in depths:
    net = densenet_bc(depth=depth, growth_rate=12).to(device)
    for efficient in (False, True):
        net.memory_efficient = efficient
        curves[efficient].append(training_step_memory(net, batch_size=small_batch) / 2**20)
fig, ax = plt.subplots(figsize=(6.5, 3.6), constrained_layout=True)
ax.plot(depths, curves[False], marker="o", label="plain")
ax.plot(depths, curves[True], marker="s", label="memory-efficient (checkpointed)")
ax.set_xlabel("depth L of DenseNet-BC (k=12)")
ax.set_ylabel("peak memory of one step (MiB)")
ax.set_title(f"batch {small_batch}, {hardware_description(device)}", fontsize=9)
ax.grid(alpha=0.3)
ax.legend()
plt.show()
print("ratio plain / efficient by depth:", ", ".join(f"L={d}: {p / e:.2f}x" for d, p, e in zip(depths, curves[False], curves[True])))

# %% [markdown]
# Read the ratio row against depth: it rises as the network deepens. The
# price is time: the recomputed layers run twice, once forward and once again
# in the backward pass. Pleiss et al. report 15–20% on a GPU; the table above
# gives the figure for the hardware that ran this notebook.
#
# ## Training: DenseNet-BC against a ResNet of the same size
#
# We train a DenseNet-BC and a pre-activation ResNet with about the same
# number of parameters, on the same data, schedule and seed. Under `fast`
# these are DenseNet-BC-100 ($k=12$, 0.77M) and pre-activation ResNet-56
# (0.85M); the CPU profiles use smaller depths, with the same pairing by
# parameter count. Under `paper` the schedule is the DenseNet paper's: 300
# epochs at batch 64, Nesterov momentum, and the learning rate divided by 10
# at 50% and 75% of training.

# %% tags=["nbval-ignore-output"]
dense_depth = profile.pick(smoke=16, demo=40, fast=100, paper=100)
resnet_depth = profile.pick(smoke=8, demo=14, fast=56, paper=56)
config = profile.train_config(**profile.pick(smoke={}, demo={}, fast={}, paper=paper_recipe("densenet_bc100_k12")))
data = load_cifar("cifar10", **profile.data_kwargs())
print(data.describe())
runs, trained = {}, {}
for name, build in [
    (f"DenseNet-BC-{dense_depth} (k=12)", lambda: densenet_bc(depth=dense_depth, growth_rate=12)),
    (f"pre-act ResNet-{resnet_depth}", lambda: preact_resnet(depth=resnet_depth)),
]:
    torch.manual_seed(0)
    trained[name] = build()
    runs[name] = fit(trained[name], data, config, name=name)

# %% tags=["nbval-ignore-output"]
learning_curves(runs)
plt.show()

# %% tags=["nbval-ignore-output"]
flops = {name: f"{count_flops(model.float().cpu()) / 1e9:.3f}" for name, model in trained.items()}
results_table(runs, extra={"GFLOPs / image": flops})

# %% [markdown]
# These are our numbers, for the profile, data and hardware the caption
# names; the paper's are in the Table 6 section above. Under the short
# profiles, neither network is close to converged, and one seed cannot
# separate two networks a point apart. The `time per epoch` column shows the
# cost side: at equal parameters, the DenseNet spends almost three times the
# FLOPs of the ResNet, and on a CPU its many thin layers and concatenations
# make it slower still.
#
# ## Feature reuse inside a trained DenseNet
#
# Does a deep layer actually use the features of early layers, or only the
# recent ones? The paper's Figure 5 answers this from the weights of a
# trained network. For every layer $\ell$ of a block, and every source $s$
# whose channels it reads ($s = 0$ is the block input, $s \ge 1$ the $k$
# channels made by layer $s$), it takes the average absolute weight of the
# first convolution of $\ell$ over the channels from $s$. A layer that gives
# large weights to a source uses it. The last column of each block is the
# transition layer that follows it (or, after the last block, the
# classifier).

# %% tags=["nbval-ignore-output"]
net = trained[f"DenseNet-BC-{dense_depth} (k=12)"].float().cpu()
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), constrained_layout=True)
readers = [net.transitions[0].conv.weight, net.transitions[1].conv.weight, net.fc.weight]
reuse_maps = []
for index, (ax, block, reader) in enumerate(zip(axes, net.blocks, readers)):
    reuse = dense_feature_reuse(block, reader)
    reuse = reuse / reuse.nan_to_num(0).amax(dim=0, keepdim=True)  # each column relative to its largest entry
    reuse_maps.append(reuse)
    image = ax.imshow(reuse.numpy(), cmap="viridis", vmin=0, vmax=1, origin="upper")
    n = reuse.shape[1] - 1
    ax.set_xticks(range(n + 1), [str(l) for l in range(1, n + 1)] + ["T" if index < 2 else "C"], fontsize=7)
    ax.set_yticks(range(n + 1), ["in"] + [str(s) for s in range(1, n + 1)], fontsize=7)
    ax.set_xlabel("target layer ℓ (T: transition, C: classifier)")
    ax.set_ylabel("source s")
    ax.set_title(f"dense block {index + 1}", fontsize=10)
fig.colorbar(image, ax=axes, shrink=0.8, label="mean |w|, relative to the column's maximum")
fig.suptitle(f"DenseNet-BC-{dense_depth} (k=12) trained under profile {profile.name!r} on {data.name}", fontsize=10)
plt.show()

used = torch.cat([m[:, :-1][~torch.isnan(m[:, :-1])] for m in reuse_maps])
print(f"inside the blocks, {(used >= 0.5).float().mean():.0%} of the (source, layer) pairs get at least half "
      f"of the weight of the layer's most-used source")  # fmt: skip
for index, reuse in enumerate(reuse_maps):
    last = reuse[:, -1]
    print(f"block {index + 1}: the {'transition' if index < 2 else 'classifier'} gives the block input "
          f"{last[0]:.2f} and the last layer's features {last[-1]:.2f} of its largest weight")  # fmt: skip

# %% [markdown]
# Each column is scaled to its own maximum, so the colours compare the
# sources *within* one layer. The paper's reading of its Figure 5 (DenseNet
# with $L = 40$, $k = 12$, fully trained) is:
#
# 1. every layer spreads its weights over many sources, so even early
#    features are read directly by deep layers in the same block;
# 2. the transition layers also spread their weights across the whole
#    block, so information flows from the first to the last layers of the
#    network through few indirections;
# 3. the layers in the second and third blocks give little weight to the
#    output of the transition before them (the top row), which the paper
#    takes as a sign that the transition's features are redundant, the
#    motivation for compression;
# 4. the classifier concentrates on the final feature maps, which suggests
#    that high-level features are produced late.
#
# Compare each claim with the maps above and the printed figures. One fact
# helps to read them: at initialisation, every input channel of a
# convolution draws its weights from the same distribution, so every entry of
# a column is equal in expectation. A flat map is the untrained state; any
# structure is what training has written into the weights.
#
# In the committed `demo` run (DenseNet-BC-40 after 10 epochs on 4,500
# images) the maps are still close to flat: every (source, layer) pair gets
# at least half of its layer's largest weight, and the classifier weighs the
# block input (0.75) about as much as the last layer's features (0.70). So
# claim 1 holds, trivially, and claims 3 and 4 do not show yet: ten short
# epochs from random weights are not enough to reshape them. Run the chapter
# under `fast` or `paper` to see whether the paper's pattern emerges.
#
# **Summing up.** A dense block concatenates: each layer adds $k$ channels to
# a growing shared state, and reads all of it. DenseNet-BC, with bottlenecks
# and compression, reaches a ResNet's accuracy with far fewer parameters. Its
# memory problem comes from storing the concatenated and normalised inputs;
# recomputing them in the backward pass, as above, removes most of it for a
# modest cost in time.
