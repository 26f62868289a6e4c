"""`tb_lstm_gates.lightning.LSTMGatesCallback` in a real Lightning Trainer."""

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from plugin_logs import step_units
from torch import nn

from tb_lstm_gates import torch as tg
from tb_lstm_gates.lightning import LSTMGatesCallback
from tb_lstm_gates.logs import metadata, reader

PENALTY = tg.GatePenalty(l2={"recurrent/forget": 1e-2})


class Regressor(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 5, batch_first=True)
        self.head = nn.Linear(5, 1)

    def forward(self, x):
        y, _ = self.rnn(x)
        return self.head(y[:, -1])

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y) + PENALTY(self)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(tmp_path, callback, epochs=2):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4, 3), torch.randn(32, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    module = Regressor()
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=TensorBoardLogger(tmp_path, name="runs"),
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
    )
    trainer.fit(module, loader)
    return trainer, module, x


def test_epochs_are_logged_into_the_loggers_run_next_to_lightnings_scalars(tmp_path):
    trainer, module, x = fit(tmp_path, LSTMGatesCallback(probe=torch.randn(2, 4, 3), penalty=PENALTY))
    run = trainer.log_dir
    assert run.endswith("runs/version_0")
    records = reader.load(run)
    assert sorted({r.step for r in records}) == [0, 1, 2]
    weight = module.rnn.weight_hh_l0.detach().numpy()
    l2 = {
        (r.gate, r.step): r.value
        for r in records
        if (r.layer, r.part, r.stat) == ("rnn/l0", "recurrent", "l2")
    }
    for g, gate in enumerate(("input", "forget", "cell", "output")):
        assert l2[gate, 2] == pytest.approx(np.linalg.norm(weight[5 * g : 5 * (g + 1)]), rel=1e-6)
    losses = {r.step: r.value for r in records if r.stat == metadata.LOSS}
    assert sorted(losses) == [1, 2] and all(v > 0 for v in losses.values())
    assert any(r.stat == "act_mean" for r in records)
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(run)
    accumulator.Reload()
    assert "train_loss" in accumulator.Tags()["scalars"] + accumulator.Tags()["tensors"]


def test_every_n_train_steps_logs_global_steps(tmp_path):
    trainer, _, _ = fit(
        tmp_path, LSTMGatesCallback(log_dir=tmp_path / "gates", every_n_train_steps=3, histogram_freq=0)
    )
    assert trainer.global_step == 8
    assert sorted({r.step for r in reader.load(tmp_path / "gates")}) == [0, 3, 6]
    assert step_units(tmp_path / "gates") == {"global step"}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="every_n_epochs must be a positive int.*every_n_train_steps"):
        LSTMGatesCallback(every_n_epochs=0, every_n_train_steps=-1)
    with pytest.raises(ValueError, match="histogram_bins"):
        LSTMGatesCallback(histogram_bins=0)
