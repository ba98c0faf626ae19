"""resnotes: the package behind the book's chapters on deep residual networks.

- ``resnotes.models``: the architectures and a registry of them;
- ``resnotes.data``: CIFAR as uint8 tensors (``datasets``), augmented in whole
  batches on the device (``batches``);
- ``resnotes.config``: ``TrainConfig``, the ``smoke``, ``demo``, ``fast`` and
  ``paper`` profiles (also importable from ``resnotes.profiles``), the papers'
  recipes, and ``make_config``;
- ``resnotes.train``: ``fit``, ``evaluate`` and the command line;
- ``resnotes.checkpoint`` and ``resnotes.files``: the run folder, safe writes;
- ``resnotes.plot``, ``resnotes.report``, ``resnotes.ledger``: figures, tables, results.
"""

__version__ = "0.2.0"
