#!/usr/bin/python3
"""PyTorch's side of test_attention's case attention_matches_torch_gpt2_attention:

    torch_attention.py DIR B T WIDTH HEADS BIAS

Reads raw little-endian float32 files from DIR: x and dy (B*T*WIDTH values each),
c_attn.weight [WIDTH][3*WIDTH], c_attn.bias [3*WIDTH], c_proj.weight [WIDTH][WIDTH],
c_proj.bias [WIDTH] (the biases unused when BIAS is 0). Runs Hugging Face's GPT2Attention
forward (eager attention, no dropout; transformers' own code, written out below since the
package is not installed), backward from dy, and writes y, dx and d<name> for each tensor
used to DIR, the same way.

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


def conv1d(x, weight, bias):
    """transformers.pytorch_utils.Conv1D: y = x @ weight + bias, weight [in][out]."""
    size_out = x.size()[:-1] + (weight.size(-1),)
    x = x.view(-1, x.size(-1))
    x = torch.addmm(bias, x, weight) if bias is not None else torch.mm(x, weight)
    return x.view(size_out)


def gpt2_attention(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b, heads):
    """GPT2Attention.forward with _attn (scale_attn_weights=True, no layer-idx scaling)."""
    b, t, width = x.shape
    head_dim = width // heads
    query, key, value = conv1d(x, c_attn_w, c_attn_b).split(width, dim=2)

    def split_heads(v):
        return v.view(b, t, heads, head_dim).permute(0, 2, 1, 3)

    query, key, value = split_heads(query), split_heads(key), split_heads(value)
    attn_weights = torch.matmul(query, key.transpose(-1, -2))
    attn_weights = attn_weights / torch.full([], value.size(-1) ** 0.5, dtype=attn_weights.dtype)
    causal_mask = torch.tril(torch.ones((t, t), dtype=torch.bool)).view(1, 1, t, t)
    mask_value = torch.full([], torch.finfo(attn_weights.dtype).min, dtype=attn_weights.dtype)
    attn_weights = torch.where(causal_mask, attn_weights, mask_value)
    attn_weights = torch.nn.functional.softmax(attn_weights, dim=-1)
    z = torch.matmul(attn_weights, value).permute(0, 2, 1, 3).contiguous().view(b, t, width)
    return conv1d(z, c_proj_w, c_proj_b)


def main():
    if len(sys.argv) != 7:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    d = sys.argv[1]
    b, t, width, heads, bias = (int(v) for v in sys.argv[2:7])
    torch.set_num_threads(1)
    x = load(d, "x", (b, t, width)).requires_grad_(True)
    tensors = {"c_attn.weight": (width, 3 * width), "c_proj.weight": (width, width)}
    if bias:
        tensors.update({"c_attn.bias": (3 * width,), "c_proj.bias": (width,)})
    p = {name: load(d, name, shape).requires_grad_(True) for name, shape in tensors.items()}
    y = gpt2_attention(x, p["c_attn.weight"], p.get("c_attn.bias"), p["c_proj.weight"], p.get("c_proj.bias"), heads)
    y.backward(load(d, "dy", (b, t, width)))
    save(d, "y", y)
    save(d, "dx", x.grad)
    for name, v in p.items():
        save(d, "d" + name, v.grad)


if __name__ == "__main__":
    main()
