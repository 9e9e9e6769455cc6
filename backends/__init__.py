"""Backend adapters: one module per way of training, all with the same shape (see ``_base``).

This package imports no framework: the registry below names each backend's module and class,
the framework it needs, and the environment that framework lives in. ``load`` imports one.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backends._base import Backend


# The kinds of mode, by what the framework compiles: nothing (each operation dispatched as the Python code reaches
# it), one training step (one compiled call a step, in a Python loop: how each framework's docs teach it), or a
# chunk of steps (the loop itself inside one compiled program: the best a framework can do, and another thing).
EAGER, STEP, LOOP = "eager", "compiled step", "compiled loop"
MODES = (EAGER, STEP, LOOP)


@dataclass(frozen=True)
class Spec:
    name: str
    framework: str  # the module it imports
    env: str  # the environment that framework lives in (see bench.host.envs)
    target: str  # "module:Class"
    mode: str = "eager"  # its class's kind of mode (Backend.mode), read here without importing it: one of MODES

    @property
    def compiles(self) -> bool:
        """A mode other than eager builds a program first: it takes the longest, so its processes start first."""
        return self.mode != "eager"


BACKENDS: dict[str, Spec] = {
    s.name: s
    for s in [
        Spec("numpy", "numpy", "main", "backends.numpy:Numpy"),
        Spec("torch", "torch", "main", "backends.torch:Torch"),
        Spec("torch-nn", "torch", "main", "backends.torch_nn:TorchNN"),
        Spec("torch-compile", "torch", "main", "backends.torch_compile:TorchCompile", mode=STEP),
        Spec("torch-nn-compile", "torch", "main", "backends.torch_nn_compile:TorchNNCompile", mode=STEP),
        Spec("jax", "jax", "main", "backends.jax:Jax"),
        Spec("jax-jit", "jax", "main", "backends.jax_jit:JaxJit", mode=STEP),
        Spec("jax-scan", "jax", "main", "backends.jax_scan:JaxScan", mode=LOOP),
        Spec("tensorflow", "tensorflow", "main", "backends.tensorflow:Tensorflow"),
        Spec("tensorflow-function", "tensorflow", "main", "backends.tensorflow_function:TensorflowFunction", mode=STEP),
        Spec("tensorflow-xla", "tensorflow", "main", "backends.tensorflow_xla:TensorflowXla", mode=STEP),
        Spec("tensorflow-xla-loop", "tensorflow", "main", "backends.tensorflow_xla_loop:TensorflowXlaLoop", mode=LOOP),
        Spec("autograd", "autograd", "main", "backends.autograd:Autograd"),
        Spec("mxnet", "mxnet", "mxnet", "backends.mxnet:Mxnet"),
        Spec("mxnet-gluon", "mxnet", "mxnet", "backends.mxnet_gluon:MxnetGluon", mode=STEP),
    ]
}


def load(name: str) -> type[Backend]:
    module, cls = BACKENDS[name].target.split(":")
    return getattr(importlib.import_module(module), cls)


# Names that measured another mode before the modes had kinds (results whose rows say mode "compiled", or no
# mode): then ``jax-jit`` and ``tensorflow-xla`` compiled a chunk of steps into one program, which ``jax-scan`` and
# ``tensorflow-xla-loop`` do now; ``bench diff`` compares such a row with the mode of its new name.
RENAMED: dict[str, str] = {"jax-jit": "jax-scan", "tensorflow-xla": "tensorflow-xla-loop"}
OLD_MODES = (None, "compiled")  # the mode a row from before the kinds says
