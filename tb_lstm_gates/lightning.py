"""`LSTMGatesCallback` for Lightning; it lives in the PyTorch wing, `tb_lstm_gates.torch.lightning`."""

from tb_lstm_gates.torch.lightning import LSTMGatesCallback

__all__ = ["LSTMGatesCallback"]
