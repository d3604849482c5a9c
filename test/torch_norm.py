#!/usr/bin/python3
"""PyTorch's side of test_norm's case batchnorm_matches_torch_batchnorm:

    torch_norm.py DIR N C H W EPS MOMENTUM RELU

Reads raw little-endian float32 files from DIR: x (N*C*H*W values; H = W = 0 for a 2-d
[N, C] input), gamma, beta, running_mean, running_var (C each) and dy (like x). Runs one
training-mode step of nn.BatchNorm2d (nn.BatchNorm1d for 2-d input), relu after it when RELU
is 1, backward from dy, then the same module in eval mode on x. Writes y, dx, dgamma,
dbeta, running_mean.out, running_var.out and y_eval to DIR, the same way.

Exit status: 0 on success, 77 when torch cannot be imported (the C case then skips).
"""
import os
import sys

try:
    import torch
except ImportError as e:  # the C case reports this as a skip
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(77)


def load(d, name, shape):
    with open(os.path.join(d, name), "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=torch.float32).reshape(shape).clone()


def save(d, name, t):
    with open(os.path.join(d, name), "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def main():
    if len(sys.argv) != 9:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d = sys.argv[1]
    n, c, h, w = (int(v) for v in sys.argv[2:6])
    eps, momentum, relu = float(sys.argv[6]), float(sys.argv[7]), sys.argv[8] == "1"
    torch.set_num_threads(1)
    shape = (n, c, h, w) if h > 0 else (n, c)
    bn = (torch.nn.BatchNorm2d if h > 0 else torch.nn.BatchNorm1d)(c, eps=eps, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(load(d, "gamma", (c,)))
        bn.bias.copy_(load(d, "beta", (c,)))
        bn.running_mean.copy_(load(d, "running_mean", (c,)))
        bn.running_var.copy_(load(d, "running_var", (c,)))
    x = load(d, "x", shape).requires_grad_(True)
    bn.train()
    y = bn(x)
    if relu:
        y = torch.relu(y)
    y.backward(load(d, "dy", shape))
    save(d, "y", y)
    save(d, "dx", x.grad)
    save(d, "dgamma", bn.weight.grad)
    save(d, "dbeta", bn.bias.grad)
    save(d, "running_mean.out", bn.running_mean)
    save(d, "running_var.out", bn.running_var)
    bn.eval()
    with torch.no_grad():
        ye = bn(x)
        save(d, "y_eval", torch.relu(ye) if relu else ye)


if __name__ == "__main__":
    main()
