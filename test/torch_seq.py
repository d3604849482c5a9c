#!/usr/bin/python3
"""PyTorch's side of test_seq's case embedding_layernorm_gelu_tanh_match_torch:

    torch_seq.py DIR COUNT T CONTEXT VOCAB DIM

Reads raw little-endian files from DIR: tokens (COUNT*T int32 ids), wte (VOCAB*DIM float32),
wpe (CONTEXT*DIM), gamma and beta (DIM each), dy (COUNT*T*DIM). Computes
    y = gelu(layer_norm(embedding(tokens, wte) + wpe[:T], gamma, beta), approximate='tanh')
as GPT-2's front does (nn.Embedding, nn.LayerNorm eps 1e-5, GELU(approximate='tanh')),
backward from dy, and writes y, dwte, dwpe, dgamma and dbeta to DIR, the same way.

Exit status: 0 on success, 77 when torch cannot be imported (the C case then skips).
"""
import os
import sys

try:
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the C case reports this as a skip
    print(f"torch not importable: {e}", file=sys.stderr)
    sys.exit(77)


def load(d, name, dtype, shape):
    with open(os.path.join(d, name), "rb") as f:
        raw = bytearray(f.read())
    return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()


def save(d, name, t):
    with open(os.path.join(d, name), "wb") as f:
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d = sys.argv[1]
    count, t, context, vocab, dim = (int(v) for v in sys.argv[2:7])
    tokens = load(d, "tokens", torch.int32, (count, t)).long()
    wte = load(d, "wte", torch.float32, (vocab, dim)).requires_grad_()
    wpe = load(d, "wpe", torch.float32, (context, dim)).requires_grad_()
    gamma = load(d, "gamma", torch.float32, (dim,)).requires_grad_()
    beta = load(d, "beta", torch.float32, (dim,)).requires_grad_()
    dy = load(d, "dy", torch.float32, (count, t, dim))
    h = F.embedding(tokens, wte) + wpe[:t]
    y = F.gelu(F.layer_norm(h, (dim,), gamma, beta, 1e-5), approximate="tanh")
    y.backward(dy)
    save(d, "y", y)
    save(d, "dwte", wte.grad)
    save(d, "dwpe", wpe.grad)
    save(d, "dgamma", gamma.grad)
    save(d, "dbeta", beta.grad)


if __name__ == "__main__":
    main()
