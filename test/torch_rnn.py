#!/usr/bin/python3
"""PyTorch's side of test_rnn's cases lstm_matches_torch_lstm and gru_matches_torch_gru:

    torch_rnn.py DIR lstm|gru N T D H LAYERS BIAS

Builds torch.nn.LSTM / nn.GRU(D, H, LAYERS, bias=BIAS, batch_first=True) with torch's own
initialisation (seed 7), reads raw little-endian float32 files x [N][T][D] and dy [N][T][H]
from DIR, runs y, _ = module(x) and y.backward(dy). Writes to DIR: weights.safetensors (the
state_dict under the section name "rnn.", e.g. rnn.weight_ih_l0, as dlcl_net_load takes it),
grads.safetensors (each parameter's gradient under the same name), and raw y and dx.

Exit status: 0 on success, 77 when torch cannot be imported (the C case then skips).
"""
import os
import sys

try:
    import torch
except ImportError as e:  # the C case reports this as a skip
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(77)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
from pth2safetensors import save_safetensors  # noqa: E402


def load(d, name, shape):
    with open(os.path.join(d, name), "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.float32).reshape(shape).clone()


def save(d, name, t):
    with open(os.path.join(d, name), "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def main():
    if len(sys.argv) != 9 or sys.argv[2] not in ("lstm", "gru"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d, kind = sys.argv[1], sys.argv[2]
    n, t, din, h, layers, bias = (int(v) for v in sys.argv[3:9])
    torch.set_num_threads(1)
    torch.manual_seed(7)
    cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
    m = cls(din, h, num_layers=layers, bias=bool(bias), batch_first=True)
    x = load(d, "x", (n, t, din)).requires_grad_(True)
    y, _ = m(x)
    y.backward(load(d, "dy", (n, t, h)))
    save_safetensors({"rnn." + k: v for k, v in m.state_dict().items()}, os.path.join(d, "weights.safetensors"))
    save_safetensors({"rnn." + k: p.grad for k, p in m.named_parameters()}, os.path.join(d, "grads.safetensors"))
    save(d, "y", y)
    save(d, "dx", x.grad)


if __name__ == "__main__":
    main()
