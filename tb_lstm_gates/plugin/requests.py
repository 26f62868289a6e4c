"""The routes' request parsing and JSON answers: query parameters in, plain values out.

Bad parameters raise `tensorboard.errors.InvalidArgumentError`, which
TensorBoard turns into a 400 naming the parameter.
"""

import json
import re
from collections.abc import Callable
from typing import Any

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_lstm_gates.plugin import limits

_SAMPLES_PATTERN = re.compile(r"[0-9]{1,6}")
_STEP_PATTERN = re.compile(r"[0-9]{1,18}")


def route(handler: Callable[[Any, wrappers.Request], Any]) -> Callable[..., Any]:
    """`werkzeug.Request.application` for a plugin's route method, as TensorBoard's plugins use it.

    werkzeug types `application` for functions of the request alone; on a
    method it binds `self` first and wraps the same way, so only the type
    differs.
    """
    return wrappers.Request.application(handler)  # type: ignore[arg-type]  # a method, see above


def context(request):
    """`(ctx, experiment)` of a request."""
    return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)


def json_response(request, body):
    return http_util.Respond(request, dumps(body), "application/json")


def dumps(body):
    # Serialised here rather than by `Respond`, whose `json_util.Cleanse`
    # walks every point in Python first; bodies already hold no NaN or Inf
    # (`unpack.finite`), so `allow_nan=False` only guards that.
    return json.dumps(body, allow_nan=False, separators=(",", ":"))


def required(request, name):
    values = request.args.getlist(name)
    if len(values) != 1 or not values[0]:
        raise errors.InvalidArgumentError("give exactly one non-empty %r parameter" % name)
    return values[0]


def runs(request):
    return request.args.getlist("run") or None


def step(request):
    values = request.args.getlist("step")
    if not values:
        return None
    if len(values) == 1 and _STEP_PATTERN.fullmatch(values[0]):
        return int(values[0])
    raise errors.InvalidArgumentError(
        "step must be one non-negative integer, got %s" % ", ".join(map(repr, values))
    )


def wall_times(request):
    values = request.args.getlist("wall_times")
    if not values:
        return True
    if len(values) == 1 and values[0] in ("true", "false"):
        return values[0] == "true"
    raise errors.InvalidArgumentError(
        "wall_times must be one of true or false, got %s" % ", ".join(map(repr, values))
    )


def samples(request):
    values = request.args.getlist("samples")
    if not values:
        return limits.DEFAULT_SAMPLES
    if len(values) == 1 and _SAMPLES_PATTERN.fullmatch(values[0]):
        samples = int(values[0])
        if 2 <= samples <= limits.MAX_SAMPLES:
            return samples
    raise errors.InvalidArgumentError(
        "samples must be one integer from 2 to %d, got %s"
        % (limits.MAX_SAMPLES, ", ".join(map(repr, values)))
    )
