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


@dataclass(frozen=True)
class Spec:
    name: str
    framework: str  # the module it imports
    env: str  # the environment that framework lives in (see bench.host.envs)
    target: str  # "module:Class"
    mode: str = "eager"  # its class's mode (Backend.mode), read here without importing it: "eager", "compiled", …

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
        Spec("torch-compile", "torch", "main", "backends.torch_compile:TorchCompile", mode="compiled"),
        Spec("jax", "jax", "main", "backends.jax:Jax"),
        Spec("jax-jit", "jax", "main", "backends.jax_jit:JaxJit", mode="compiled"),
        Spec("tensorflow", "tensorflow", "main", "backends.tensorflow:Tensorflow"),
        Spec("tensorflow-xla", "tensorflow", "main", "backends.tensorflow_xla:TensorflowXla", mode="compiled"),
        Spec("autograd", "autograd", "main", "backends.autograd:Autograd"),
        Spec("mxnet", "mxnet", "mxnet", "backends.mxnet:Mxnet"),
        Spec("mxnet-gluon", "mxnet", "mxnet", "backends.mxnet_gluon:MxnetGluon", mode="compiled"),
    ]
}


def load(name: str) -> type[Backend]:
    module, cls = BACKENDS[name].target.split(":")
    return getattr(importlib.import_module(module), cls)
