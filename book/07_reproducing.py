# ---
# jupyter:
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
# # Appendix: reproducing at full scale
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/resnotes/resnotes/blob/main/book/07_reproducing.ipynb)
#
# The chapters train under short profiles so that they run in minutes. This
# appendix gives the exact commands that train each paper's network with the
# paper's own recipe on full CIFAR, on one GPU or on several, how long they
# take where we have measured it, and how to resume a run.

# %% [markdown]
# > **Running this chapter.** This appendix trains nothing, so any runtime will do:
# > Colab opens it on its default CPU runtime, and it needs no GPU. It ran in a few
# > seconds on 2 CPU cores (measured, not counting the install in Colab).

# %%
import sys

if "google.colab" in sys.modules:
    # %pip install -q "resnotes==0.3.0"
    pass

# %% [markdown]
# ## One command per paper row
#
# `python -m resnotes.train --profile paper` applies the model's published
# recipe: epochs, batch size, learning rate, milestones, Nesterov momentum and
# weight decay, from `resnotes.config.PAPER_RECIPES`. `--ledger results`
# writes the run's record into the results ledger when it finishes. The table
# below is generated from the registry and the recipes, so it cannot drift
# from the code. Every row trains with one command of the same form:
#
# ```bash
# python -m resnotes.train --model <model> --profile paper --ledger results
# ```

# %% tags=["nbval-ignore-output"]
import resnotes as rn
from resnotes.ledger import load_ledger

# This page trains nothing; the profile only says how it was rendered.
profile = rn.start_chapter()

# %%

PAPER_ROWS = [
    "preact_resnet110",
    "preact_resnet164",
    "preact_resnet1001",
    "pyramidnet110_a48",
    "pyramidnet272_bottleneck_a200",
    "densenet40_k12",
    "densenet100_bc_k12",
    "densenet190_bc_k40",
    "attention92",
    "attention452",
    "resnet110_stochastic_depth",
    "wrn28_k10",
]
rows = []
for name in PAPER_ROWS:
    config = rn.make_config(name, "paper")
    milestones = ", ".join(f"{m:.0%}" for m in config.milestones)
    rows.append(
        [
            f"`{name}`",
            config.epochs,
            config.batch_size,
            f"{config.lr} ×{config.lr_decay} at {milestones}",
            f"{config.warmup_epochs:.2f}",
            "yes" if config.nesterov else "no",
            config.weight_decay,
        ]
    )
headers = [
    "model",
    "epochs",
    "batch",
    "learning rate",
    "warm-up (epochs)",
    "Nesterov",
    "weight decay",
]
rn.Table(headers, rows)

# %% [markdown]
# For CIFAR-100, add `--dataset cifar100` (PyramidNet then uses its CIFAR-100
# learning rate, 0.5). Add `--seed N` for more seeds: the papers report
# medians or means of several runs, and one run is not enough to compare two
# networks a few tenths of a point apart.
#
# Every recipe also warms the learning rate up linearly over the first 1/164 of
# the run (the column above: one epoch of the 164-epoch recipes, three of
# Stochastic Depth's 500), and every run holds out 5,000 training images for
# validation, on which the kept
# checkpoint is chosen. Most of the papers train on all 50,000 and report the
# final epoch; Stochastic Depth is the exception, and does what we do: it
# trains on 45,000, validates on 5,000 and reports the test error of the
# epoch with the best validation error. The warm-up is not ours alone: He et al.
# (2015) also warm up ResNet-110, training at 0.01 until the training error is
# below 80% (about 400 iterations) before going to 0.1; we ramp linearly
# instead, and for every recipe, since very deep networks can diverge at the
# start. The validation split is our deliberate difference: it keeps the test
# set out of every decision.
#
# ## Several GPUs
#
# The same command runs with DistributedDataParallel under `torchrun`:
#
# ```bash
# torchrun --standalone --nproc_per_node=4 -m resnotes.train \
#     --model densenet190_bc_k40 --profile paper --ledger results
# ```
#
# Each process trains on its own quarter of every epoch. `--batch-size` (here
# the recipe's) stays the *global* batch, split evenly between the processes,
# so the optimisation is that of the one-GPU run and the recipe needs no
# change. Only rank 0 prints, writes checkpoints and writes the ledger. On a
# CPU the processes use the gloo backend; CI runs two-process runs that way,
# checks that no training image is seen twice in an epoch, and trains faithful
# stochastic depth, whose skipped blocks get no gradient in their step.
#
# ## Expected times
#
# No full-scale run has been timed yet: no GPU has been available to this
# project. Until the GPU check's records (`python -m resnotes.bench gpu`)
# replace them, the table gives an **estimate**: a training step costs about
# three forward passes, so an epoch of 45,000 images costs $3 \times 45{,}000$
# times the network's forward FLOPs, divided by an *assumed* effective rate of
# 5 TFLOP/s for one GPU in mixed precision. That rate is a round guess, not a
# measurement: these small 32×32 networks keep a GPU well below its peak (a T4
# may sustain 2 TFLOP/s or less), so read the hours as a first idea, likely
# low. Where the ledger holds a full-data run of the model, its measured time per
# epoch is given beside the estimate.

# %% tags=["nbval-ignore-output"]
ASSUMED_RATE = 5e12  # FLOP/s, an assumption (see above), not a measurement
ledger = load_ledger()
rows = []
for name in PAPER_ROWS:
    epochs = rn.make_config(name, "paper").epochs
    flops = rn.count_flops(rn.create_model(name))
    estimate = 3 * flops * 45_000 * epochs / ASSUMED_RATE / 3600
    found = [r for r in ledger if r["model"] == name and r["train_images"] >= 40_000]
    measured = "not yet measured"
    if found:
        latest = max(found, key=lambda r: r["created"])
        device = latest["hardware"]["device"]
        seconds = latest["seconds_per_epoch"]
        measured = f"{seconds:.1f} s per epoch on {device} ({latest['dataset']})"
    rows.append([f"`{name}`", f"{flops / 1e9:.2f}", f"{estimate:.1f} h", measured])
headers = ["model", "GFLOPs per image", "estimate, paper schedule", "measured"]
caption = (
    "Full CIFAR-10 or CIFAR-100, 45,000 training images per epoch; the estimates "
    "assume 5 TFLOP/s effective: not measured"
)
rn.Table(headers, rows, caption=caption)

# %% [markdown]
# To replace an estimate by a measurement, run the GPU check on a GPU and
# commit the records it writes:
#
# ```bash
# python -m resnotes.bench gpu --out gpu-check --budget-minutes 8
# cp gpu-check/records/*.json results/
# git add results/ && git commit -m "GPU check on <device>"
# ```
#
# ## Resuming
#
# A run writes `runs/<model>-<dataset>-<profile>-seed<seed>/last.pt` after
# every epoch, atomically, and keeps the one before as `previous.pt`. Running
# **the same command again** resumes from `last.pt`: the weights, the
# optimiser, the epoch, the learning-rate schedule, the data order and the
# random state all continue exactly, so an interrupted run ends where an
# uninterrupted one would (a CI test kills a run with SIGKILL mid-epoch and
# checks this bit for bit). Resuming with a setting that changes the run
# (epochs, batch size, learning rate, profile, subset, seed, precision, number
# of processes) is refused with a list of what differs. `--no-resume` starts
# afresh and moves the old files into a `replaced-<time>/` subfolder. A
# damaged `last.pt` is reported by name, with the kept `previous.pt` to fall
# back on, and a second run into the same folder is refused while the first
# holds its lock.
#
# On a shared cluster, point `--out` at a persistent folder, and resubmit the
# same command when the job's time limit ends.

# %% tags=["nbval-ignore-output"]
print(rn.chapter_time())
