"""One rank of a 2-process DistributedDataParallel run with GateLogger (tests/test_torch_distributed.py)."""

import os

import torch
import torch.distributed as dist
from torch import nn

from tb_lstm_gates import torch as tg


def run(rank, world_size, port, log_dir, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)  # the same initial weights on every rank
        model = nn.parallel.DistributedDataParallel(nn.LSTM(3, 4, batch_first=True))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(rank))  # each rank its own data
        with tg.GateLogger(log_dir, probe=x[:2]) as logger:
            logger.log(model, 0)
            for step in range(1, 4):
                optimizer.zero_grad()
                out, _ = model(x)
                out.square().mean().backward()
                optimizer.step()
                logger.log(model, step)
        torch.save(
            {k: v.detach() for k, v in model.module.state_dict().items()},
            os.path.join(out_dir, "rank%d.pt" % rank),
        )
    finally:
        dist.destroy_process_group()
