"""``tensorflow-function``'s training step compiled by XLA, ``tf.function(jit_compile=True)``, called once a
step from Python, as TensorFlow's XLA guide ("XLA: Optimizing Compiler for Machine Learning", explicit
compilation with ``tf.function(jit_compile=True)``) compiles a training step; the objective alone, each operator
beyond the gradient and Newton's step likewise."""

from __future__ import annotations

from backends.tensorflow import OPERATORS
from backends.tensorflow_function import TensorflowFunction


class TensorflowXla(TensorflowFunction):
    name = "tensorflow-xla"
    jit_compile = True
    operators = {k: f"tf.function(jit_compile=True) of {v}" for k, v in OPERATORS.items()}
