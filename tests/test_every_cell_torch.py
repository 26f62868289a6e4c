"""Every recurrent cell of generated torch module structures is logged once, right, and probed call by call.

A hypothesis generator builds module trees of depth 0-3: custom modules
holding LSTM / GRU / LSTMCell / GRUCell (and a gateless nn.RNN) as
attributes, in `nn.ModuleList`, `nn.ModuleDict` or a plain Python list
(which torch does not track: its modules are not the model's parameters,
so they are not logged, and one warning names the list), bidirectional,
stacked and projected RNNs, modules shared by two paths, cells called in
Python loops and modules called several times in one forward pass. Every
recurrent module reads the model's input `(batch, time, 3)`; each custom
module adds a state it stored on `self` in its previous forward pass.

For each structure: every `weight_hh*` of the model belongs to exactly one
logged cell or is named by `unlogged_weights`; the logged l2 of every
recurrent gate block equals numpy's; the probe's outputs equal torch's own,
call by call. A few structures also train bit-identically with and without
the logger.
"""

import dataclasses
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.logs import reader
from tb_lstm_gates.torch.cells import unlogged_weights

FEATURES, BATCH, TIME = 3, 2, 3
GATES = {nn.LSTM: 4, nn.LSTMCell: 4, nn.GRU: 3, nn.GRUCell: 3}
GATE_NAMES = {4: ("input", "forget", "cell", "output"), 3: ("reset", "update", "candidate")}


@dataclasses.dataclass(frozen=True)
class Leaf:
    kind: str  # lstm, gru, rnn, lstm_cell, gru_cell, or shared (the first leaf built, again)
    hidden: int
    layers: int
    bidirectional: bool
    batch_first: bool
    projection: bool
    calls: int  # calls per forward pass (a cell: one per time step, this many loops)


@dataclasses.dataclass(frozen=True)
class Holder:
    how: str  # attributes, module_list, module_dict, plain_list
    children: tuple


def leaf_of(kinds):
    return st.builds(
        Leaf,
        kind=st.sampled_from(kinds),
        hidden=st.integers(2, 3),
        layers=st.integers(1, 2),
        bidirectional=st.booleans(),
        batch_first=st.booleans(),
        projection=st.booleans(),
        calls=st.integers(1, 3),
    )


leaves = leaf_of(["lstm", "gru", "lstm_cell", "gru_cell", "rnn", "shared", "shared"])
HOWS = st.sampled_from(["attributes", "module_list", "module_dict", "plain_list"])


def holders(depth):
    child = leaves if depth == 1 else st.one_of(leaves, holders(depth - 1))
    return st.builds(Holder, HOWS, st.lists(child, min_size=1, max_size=3).map(tuple))


# Depth 0: the RNN is the model; 1-3: custom modules nested that deep.
structures = st.one_of(leaf_of(["lstm", "gru"]), holders(3), holders(2), holders(1))


def make_leaf(leaf, built):
    if leaf.kind == "shared" and built:
        return built[0]
    if leaf.kind in ("lstm_cell", "gru_cell"):
        module = (nn.LSTMCell if leaf.kind == "lstm_cell" else nn.GRUCell)(FEATURES, leaf.hidden)
    else:
        kind = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN, "shared": nn.LSTM}[leaf.kind]
        extra = {"proj_size": 1} if kind is nn.LSTM and leaf.projection else {}
        module = kind(
            FEATURES,
            leaf.hidden,
            num_layers=leaf.layers,
            bidirectional=leaf.bidirectional,
            batch_first=leaf.batch_first,
            **extra,
        )
    built.append(module)
    return module


def run_leaf(module, x, calls):
    """The outputs of `calls` calls of a recurrent module on `x` `(batch, time, features)`."""
    if isinstance(module, (nn.LSTMCell, nn.GRUCell)):
        outputs, state = [], None
        for _ in range(calls):
            for t in range(x.shape[1]):
                state = module(x[:, t], state)
                outputs.append(state[0] if isinstance(state, tuple) else state)
        return torch.stack(outputs, 1)
    inputs = x if module.batch_first else x.transpose(0, 1)
    outputs, state = [], None
    for _ in range(calls):
        out, state = module(inputs, state)
        outputs.append(out if module.batch_first else out.transpose(0, 1))
    return torch.cat(outputs, 1)


class Node(nn.Module):
    """A custom module holding its children one of four ways; stores a state on `self` in `forward`."""

    def __init__(self, holder, built):
        super().__init__()
        children = [Node(c, built) if isinstance(c, Holder) else make_leaf(c, built) for c in holder.children]
        self.calls = [1 if isinstance(c, Holder) else c.calls for c in holder.children]
        self.how = holder.how
        if holder.how == "attributes":
            for i, child in enumerate(children):
                setattr(self, "c%d" % i, child)
        elif holder.how == "module_list":
            self.items = nn.ModuleList(children)
        elif holder.how == "module_dict":
            self.items = nn.ModuleDict({"k%d" % i: c for i, c in enumerate(children)})
        else:
            self.items = children  # torch does not track these
        self.memory = None

    def children_in_order(self):
        if self.how == "attributes":
            return [getattr(self, "c%d" % i) for i in range(len(self.calls))]
        return list(self.items.values()) if self.how == "module_dict" else list(self.items)

    def forward(self, x):
        if self.memory is not None:
            x = x + self.memory
        outputs = []
        for child, calls in zip(self.children_in_order(), self.calls):
            y = child(x) if isinstance(child, Node) else run_leaf(child, x, calls)
            outputs.append(y.reshape(x.shape[0], -1))
        y = torch.cat(outputs, 1)
        self.memory = 0.1 * y.detach().mean()
        return y


def build(structure, seed=0):
    """`(model, probe input)` of a structure."""
    torch.manual_seed(seed)
    if isinstance(structure, Leaf):
        model = make_leaf(structure, [])
        x = torch.randn(BATCH, TIME, FEATURES, generator=torch.Generator().manual_seed(seed))
        return model, x if model.batch_first else x.transpose(0, 1)
    model = Node(structure, [])
    return model, torch.randn(BATCH, TIME, FEATURES, generator=torch.Generator().manual_seed(seed))


def torch_calls(model, modules, x):
    """`{id(module): [its output at each call]}` from forward hooks, in eval mode without gradients."""
    calls = {id(m): [] for m in modules}
    hooks = [m.register_forward_hook(lambda m, a, out: calls[id(m)].append(out)) for m in modules]
    was = [(m, m.training) for m in model.modules()]
    model.eval()
    # Nodes in plain lists too: torch does not track them, but the forward changes their memory.
    memories = {m: m.memory for m in every_module(model) if isinstance(m, Node)}
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
        for m, training in was:
            m.training = training
        for m, memory in memories.items():
            m.memory = memory
    return calls


def every_module(model):
    """Every module of `model`, those held in plain lists included (which `model.modules()` leaves out)."""
    found, stack = {}, [model]
    while stack:
        m = stack.pop()
        if id(m) not in found:
            found[id(m)] = m
            stack.extend(m.children())
            stack.extend(m.items if isinstance(m, Node) and m.how == "plain_list" else [])
    return list(found.values())


def check_calls(module, cells, traces, outputs):
    """The probe's outputs of `module`'s cells equal torch's output at each call."""
    if isinstance(module, (nn.LSTMCell, nn.GRUCell)):
        [cell] = cells
        expected = np.stack([(out[0] if isinstance(out, tuple) else out).numpy() for out in outputs], 1)
        np.testing.assert_allclose(traces[cell.layer].outputs, expected, rtol=1e-4, atol=1e-5)
        return
    last = [c for c in cells if c.index == module.num_layers - 1]
    for i, (out, _) in enumerate(outputs):
        out = (out if module.batch_first else out.transpose(0, 1)).numpy()
        steps = out.shape[1]
        mine = []
        for cell in last:
            chunk = traces[cell.layer].outputs[:, i * steps : (i + 1) * steps]
            mine.append(chunk[:, ::-1] if cell.reverse else chunk)
        np.testing.assert_allclose(np.concatenate(mine, -1), out, rtol=1e-4, atol=1e-5)


@settings(max_examples=100, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(structures)
# Found by the generator: an LSTM held both in a plain list (below a Node torch does not track) and as
# an attribute. The probe changed the untracked Node's memory and never put it back.
@example(
    Holder(
        "attributes",
        (
            Holder("plain_list", (Holder("attributes", (Leaf("lstm", 2, 1, False, False, False, 1),)),)),
            Leaf("lstm", 2, 1, False, False, False, 1),
            Leaf("shared", 2, 1, False, False, False, 1),
        ),
    )
)
def test_every_recurrent_weight_is_logged_once_right_and_probed_call_by_call(tmp_path_factory, structure):
    model, x = build(structure)
    cells = tg.find_cells(model) if any(True for _ in _gated(model)) else []
    describe(structure, model, cells)
    unlogged = dict(unlogged_weights(model, cells))
    # Every recurrent weight of the model: exactly one logged cell, or named with a reason.
    for name, param in model.named_parameters():
        if name.rsplit(".", 1)[-1].startswith("weight_hh"):
            owners = [c for c in cells if any(p is param for p in c.params.values())]
            assert len(owners) == 1 or (not owners and name in unlogged), (name, [c.layer for c in owners])
    assert len({c.layer for c in cells}) == len(cells)
    for path, module in model.named_modules():
        if isinstance(module, Node) and module.how == "plain_list":
            held = [p for m in module.items for n, p in m.named_parameters() if "weight_hh" in n]
            assert bool(held) == (("%s.items" % path if path else "items") in unlogged)
    if not cells:
        return
    modules = list({id(c.module): c.module for c in cells}.values())
    expected = torch_calls(model, modules, x)
    logdir = tmp_path_factory.mktemp("every_cell")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unlogged weights' warnings, checked above
        with tg.GateLogger(logdir, histogram_freq=0, probe=x) as logger:
            logger.log(model, 0)
        traces = {c.layer: t for c, t in tg.probe_traces(model, cells, x)}
    for module in modules:
        check_calls(module, [c for c in cells if c.module is module], traces, expected[id(module)])
    for trace in traces.values():
        # Torch's own output, the self-check's reference, equals the recomputation (every layer, every step).
        np.testing.assert_allclose(trace.reference_outputs, trace.outputs, rtol=1e-4, atol=1e-5)
    l2 = {(r.layer, r.gate): r.value for r in reader.load(logdir) if (r.part, r.stat) == ("recurrent", "l2")}
    for cell in cells:
        weight = cell.params["weight_hh"].detach().numpy()
        gates = GATES[type(cell.module)]
        for g, gate in enumerate(GATE_NAMES[gates]):
            block = weight[g * weight.shape[0] // gates : (g + 1) * weight.shape[0] // gates]
            assert l2[cell.layer, gate] == pytest.approx(np.linalg.norm(block), rel=1e-5)


def describe(structure, model, cells):
    """Hypothesis events (`--hypothesis-show-statistics`): what the generated structures cover."""
    event("depth %d" % depth(structure))
    event("logged cells: %s" % ("none" if not cells else "1" if len(cells) == 1 else "several"))
    leaves = list(all_leaves(structure))
    for kind in ("lstm_cell", "gru_cell", "shared", "rnn"):
        if any(leaf.kind == kind for leaf in leaves):
            event("has %s" % kind)
    if any(leaf.calls > 1 for leaf in leaves):
        event("a module called several times")
    if any(m.bidirectional and m.num_layers > 1 for m in model.modules() if isinstance(m, (nn.LSTM, nn.GRU))):
        event("stacked bidirectional")
    if any(isinstance(m, Node) and m.how == "plain_list" for m in model.modules()):
        event("plain list")


def depth(structure):
    return 0 if isinstance(structure, Leaf) else 1 + max(depth(c) for c in structure.children)


def all_leaves(structure):
    if isinstance(structure, Leaf):
        yield structure
    else:
        for child in structure.children:
            yield from all_leaves(child)


def _gated(model):
    return (m for m in model.modules() if isinstance(m, tuple(GATES)))


def train(model, x, logger=None):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for step in range(3):
        loss = model(x).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if logger is not None:
            logger.log(model, step)
    with torch.no_grad():
        return [model(x)] + [p.detach().clone() for p in model.parameters()]


@settings(max_examples=6, derandomize=True, deadline=None)
@given(st.one_of(holders(3), holders(2)))
def test_generated_structures_train_bit_identically_with_and_without_the_logger(tmp_path_factory, structure):
    model, x = build(structure)
    if not any(True for _ in _gated(model)) or not any(True for _ in model.parameters()):
        return
    plain = train(model, x)
    model, x = build(structure)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with tg.GateLogger(tmp_path_factory.mktemp("identical"), probe=x) as logger:
            logged = train(model, x, logger)
    assert len(plain) == len(logged)
    for a, b in zip(plain, logged):
        assert torch.equal(a, b)
