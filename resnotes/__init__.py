"""resnotes: the package behind the book's chapters on deep residual networks.

- ``resnotes.models``: the architectures and a registry of them;
- ``resnotes.data``: CIFAR as uint8 tensors, augmented in whole batches on the device;
- ``resnotes.train``: ``TrainConfig``, ``fit`` and the command line;
- ``resnotes.profiles``: the ``smoke``, ``demo``, ``fast`` and ``paper`` run profiles;
- ``resnotes.plot``: learning curves and accuracy against parameters.
"""

__version__ = "0.1.0"
