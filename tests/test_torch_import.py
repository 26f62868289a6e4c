"""`tb-lstm-gates import` of PyTorch state_dicts and Lightning checkpoints: the live logger's names and values."""

import collections

import pytest
import torch
from test_torch_logger import Model

from tb_lstm_gates import cli
from tb_lstm_gates import torch as tg
from tb_lstm_gates.logs import reader


def values(run_dir, step):
    return {
        (r.layer, r.cell, r.part, r.gate, r.stat): r.value
        for r in reader.load(run_dir)
        if r.step == step and r.stat not in ("histogram", "update_ratio")
    }


@pytest.fixture
def live(tmp_path):
    torch.manual_seed(0)
    model = Model()
    with tg.GateLogger(tmp_path / "live") as logger:
        logger.log(model, 5)
    return model, values(tmp_path / "live", 5)


@pytest.mark.parametrize("form", ["state_dict", "ddp_state_dict", "checkpoint_dict"])
def test_state_dict_import_lands_on_the_live_loggers_names_and_values(tmp_path, live, form):
    model, expected = live
    state = model.state_dict()
    if form == "ddp_state_dict":
        state = collections.OrderedDict(("module." + k, v) for k, v in state.items())
    elif form == "checkpoint_dict":
        state = {"model": state, "optimizer": {"lr": 0.1}, "epoch": 3}
    torch.save(state, tmp_path / "model-5.pt")
    assert (
        cli.main(["import", str(tmp_path / "model-5.pt"), "--logdir", str(tmp_path), "--run", "imported"])
        == 0
    )
    imported = values(tmp_path / "imported", 5)
    assert imported.keys() == expected.keys()
    for key, value in expected.items():
        assert imported[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_lightning_checkpoint_is_imported_at_its_global_step(tmp_path):
    import lightning.pytorch as pl
    from test_torch_lightning import Regressor

    module = Regressor()
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    x, y = torch.randn(16, 4, 3), torch.randn(16, 1)
    trainer.fit(module, torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8))
    trainer.save_checkpoint(tmp_path / "last.ckpt")
    assert cli.main(["import", str(tmp_path / "last.ckpt"), "--logdir", str(tmp_path), "--run", "ckpt"]) == 0
    records = reader.load(tmp_path / "ckpt")
    assert {r.step for r in records} == {2}
    weight = module.rnn.weight_ih_l0.detach().numpy()
    l2 = [
        r.value for r in records if (r.layer, r.part, r.gate, r.stat) == ("rnn/l0", "input", "forget", "l2")
    ]
    assert l2 == [pytest.approx(float((weight[5:10] ** 2).sum() ** 0.5), rel=1e-6)]


class Opaque:
    pass


def test_files_that_need_unpickling_or_hold_no_rnn_get_one_line_errors(tmp_path, capsys):
    torch.save({"model": Opaque()}, tmp_path / "pickled.pt")
    torch.save(torch.nn.Linear(2, 2).state_dict(), tmp_path / "linear.pt")
    assert cli.main(["import", str(tmp_path / "pickled.pt"), "--logdir", str(tmp_path)]) == 1
    assert "weights_only=True" in capsys.readouterr().err
    assert cli.main(["import", str(tmp_path / "linear.pt"), "--logdir", str(tmp_path)]) == 1
    assert "holds no nn.LSTM, nn.GRU" in capsys.readouterr().err
