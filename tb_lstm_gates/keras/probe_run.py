"""Runs the model on the probe without training noticing: `preserved` state and the gradients' function.

`preserved` puts back every state a run in inference mode could touch;
`gradient_function` computes the gradients of the model's loss on the probe
with the Keras backend's own autodiff.
"""

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Literal

import keras
import numpy as np

from tb_lstm_gates.keras.probe_calls import flatten, to_numpy

# Keras backends whose gradients `gradient_function` takes.
GRADIENT_BACKENDS = ("tensorflow", "torch", "jax")


def uses_tensorflow(model: Any) -> bool:
    """Whether `model` runs on TensorFlow (Keras 3's TensorFlow backend, or tf_keras)."""
    return keras.backend.backend() == "tensorflow" or type(model).__module__.startswith("tf_keras")


def tf_function(fn: Callable[..., Any]) -> Any:
    import tensorflow as tf

    return tf.function(fn)


def all_layers(model: Any) -> list[Any]:
    """Every layer of `model`, itself included, through nested models and wrappers, each once."""
    found: list[Any] = []
    seen: set[int] = set()

    def visit(layer: Any) -> None:
        if id(layer) in seen:
            return
        seen.add(id(layer))
        found.append(layer)
        for name in ("forward_layer", "backward_layer", "layer"):
            child = getattr(layer, name, None)
            if child is not None and hasattr(child, "weights"):
                visit(child)
        for child in getattr(layer, "layers", None) or ():
            visit(child)

    visit(model)
    return found


class preserved:
    """Runs a block on `model` so that training cannot tell it ran.

    Stateful recurrent layers turn stateless for the block (zero initial
    state, any batch size, no carried state written); afterwards, their
    carried states, the model's non-trainable variables (random seeds,
    moving statistics) and its metrics' variables get back their values.
    Frozen layers' weights are not copied: nothing writes them, and a frozen
    pretrained embedding can be large.
    """

    def __init__(self, model: Any) -> None:
        self._model = model

    def __enter__(self) -> "preserved":
        model = self._model
        layers = all_layers(model)
        self._stateful = [
            layer for layer in layers if getattr(layer, "stateful", False) and hasattr(layer, "states")
        ]
        frozen = {id(v) for layer in layers if not layer.trainable for v in layer.weights}
        variables = [v for v in model.non_trainable_variables if id(v) not in frozen]
        for metric in getattr(model, "metrics", None) or ():
            variables.extend(getattr(metric, "variables", ()))
        for layer in self._stateful:
            variables.extend(v for v in flatten(layer.states) if hasattr(v, "assign"))
        unique = {id(v): v for v in variables}
        self._saved = [(v, np.array(to_numpy(v))) for v in unique.values()]
        self._specs: list[tuple[Any, Any]] = []
        for layer in self._stateful:
            # tf_keras pins a stateful layer's input batch size in its input spec.
            self._specs.append((layer, layer.input_spec))
            layer.stateful = False
            layer.input_spec = None
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        for layer, spec in self._specs:
            layer.stateful = True
            layer.input_spec = spec
        for variable, value in self._saved:
            if not np.array_equal(to_numpy(variable), value, equal_nan=True):
                variable.assign(value)
        return False


def gradient_function(model: Any, variables: Sequence[Any]) -> Callable[[Any, Any], Any]:
    """`f(x, y)`: gradients of the model's loss on `(x, y)` w.r.t. `variables`, in order.

    One function per Keras backend (GRADIENT_BACKENDS): a `tf.function` with a
    `GradientTape` (Keras 3 on TensorFlow, or tf_keras), `torch.autograd.grad`
    (which leaves the parameters' `.grad` alone), or `jax.grad` of a
    stateless call. None of them changes a variable.
    """
    # tf_keras's `compute_loss` has no `training` argument.
    kwargs = {"training": False} if "training" in inspect.signature(model.compute_loss).parameters else {}

    def loss_of(x: Any, y: Any) -> Any:
        y_pred = model(x, training=False)
        return model.compute_loss(x=x, y=y, y_pred=y_pred, **kwargs)

    backend = keras.backend.backend()
    if uses_tensorflow(model):
        import tensorflow as tf

        def tf_gradients(x: Any, y: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = loss_of(x, y)
            return tape.gradient(loss, variables)

        # `@tf.function`, applied by hand: TensorFlow ships no types, so the result's type is stated here.
        compiled: Callable[[Any, Any], Any] = tf.function(tf_gradients)
        return compiled
    if backend == "torch":
        import torch

        def torch_gradients(x: Any, y: Any) -> Any:
            values = [v.value for v in variables]
            with torch.enable_grad():
                loss = loss_of(x, y)
            return torch.autograd.grad(loss, values, allow_unused=True)

        return torch_gradients
    if backend == "jax":
        import jax

        def jax_gradients(x: Any, y: Any) -> Any:
            def loss_at(values: Any) -> Any:
                # The scope makes the variables read `values`, which jax traces.
                with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                    return loss_of(x, y)

            return jax.grad(loss_at)([v.value for v in variables])

        return jax_gradients
    raise ValueError(
        "probe_gradients=True needs Keras on %s, not %s" % (", ".join(GRADIENT_BACKENDS), backend)
    )
