"""How many points of a series TensorBoard keeps and the routes serve.

A module of constants only, imported by both `loader` (at TensorBoard's
start-up) and the routes, so neither imports the other for them.
"""

# Points TensorBoard keeps of each `lstm_gates` time series unless the user
# passes `--samples_per_plugin lstm_gates=N` (0: every point). A version 2
# time series holds one point per step, so every step of a series is kept
# up to 10,000 steps, and memory stays bounded however long a run is.
# Beyond it both loaders keep a reservoir sample: a uniform random
# subset of the steps, always with the latest.
SAMPLES_CAP = 10000

# Points a route answers with per series unless the request asks (`samples`), and at most.
DEFAULT_SAMPLES = 1000
MAX_SAMPLES = 10000
