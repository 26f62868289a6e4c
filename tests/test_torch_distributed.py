"""GateLogger under DistributedDataParallel: 2 processes, gloo, 127.0.0.1."""

import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch_ddp_worker

from tb_lstm_gates.logs import reader


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_only_rank_0_writes_and_values_are_the_replicas_weights(tmp_path):
    log_dir, out_dir = tmp_path / "logs", tmp_path / "weights"
    out_dir.mkdir()
    mp.spawn(torch_ddp_worker.run, args=(2, free_port(), str(log_dir), str(out_dir)), nprocs=2, join=True)
    assert len(os.listdir(log_dir)) == 1  # one event file: rank 1 wrote nothing
    weights = [torch.load(out_dir / ("rank%d.pt" % r), weights_only=True) for r in range(2)]
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name])  # DDP kept the replicas equal
    records = reader.load(log_dir)
    assert sorted({r.step for r in records}) == [0, 1, 2, 3]
    w_ih = weights[0]["weight_ih_l0"].numpy()
    l2 = {
        r.gate: r.value for r in records if (r.layer, r.part, r.stat, r.step) == ("lstm/l0", "input", "l2", 3)
    }
    for g, gate in enumerate(("input", "forget", "cell", "output")):
        assert l2[gate] == pytest.approx(np.linalg.norm(w_ih[4 * g : 4 * (g + 1)]), rel=1e-6)
