#!/usr/bin/python3
"""Greedy generation with a key/value cache, GPT-2 (examples/gpt2.ini) in dlcl and in
PyTorch, batch 1, in one run: tokens per second of each and their ratio, and whether the
two produced the same tokens.

  /usr/bin/python3 bench/generate_vs_torch.py [--set vars.layers=12 ...] [--prompt 16] [--tokens 64]
      [--build build] [--threads 2]

The weights are random (GPT-2's initialisation, std 0.02; nothing is downloaded), written
by torch as a Hugging Face file and read by dlcl-generate. PyTorch decodes with its own
cache in the same arithmetic as Hugging Face's GPT2Model with past_key_values: the prompt in
one pass, then one position per token, each layer's keys and values appended. Times cover
the prompt and all new tokens (dlcl-generate's own figure, which excludes start-up and
loading; torch's likewise).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def torch_generate(w, layers, heads, prompt, n):
    import torch
    import torch.nn.functional as F
    C = w["wte.weight"].shape[1]
    hd = C // heads
    cache = [None] * layers

    def forward(tokens, pos):
        x = w["wte.weight"][tokens] + w["wpe.weight"][pos:pos + len(tokens)]
        x = x[None]
        for i in range(layers):
            p = f"h.{i}."
            h = F.layer_norm(x, (C,), w[p + "ln_1.weight"], w[p + "ln_1.bias"])
            q, k, v = (h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]).split(C, dim=2)
            q, k, v = (z.view(1, -1, heads, hd).transpose(1, 2) for z in (q, k, v))
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            t, s = q.shape[2], k.shape[2]
            att = (q @ k.transpose(-2, -1)) / hd ** 0.5
            mask = torch.ones(t, s, dtype=torch.bool).tril(s - t)
            att = att.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (att @ v).transpose(1, 2).reshape(1, t, C)
            x = x + y @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
            h = F.layer_norm(x, (C,), w[p + "ln_2.weight"], w[p + "ln_2.bias"])
            h = F.gelu(h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + h @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        x = F.layer_norm(x, (C,), w["ln_f.weight"], w["ln_f.bias"])
        return x[0, -1] @ w["wte.weight"].T

    out = []
    with torch.no_grad():
        t0 = time.perf_counter()
        logits = forward(torch.tensor(prompt), 0)
        pos = len(prompt)
        for i in range(n):
            tok = int(logits.argmax())
            out.append(tok)
            if i + 1 == n:
                break
            logits = forward(torch.tensor([tok]), pos)
            pos += 1
        secs = time.perf_counter() - t0
    return out, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--prompt", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    import torch
    import ini_torch
    from pth2safetensors import save_safetensors
    from resnet_vs_torch import cpu_name
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    tools = os.path.join(a.build, "tools")
    config = os.path.join(ROOT, "examples", "gpt2.ini")
    secs = ini_torch.expanded_sections(tools, config, a.set)
    kv = dict(secs)
    vocab, layers = int(kv["net"]["classes"]), sum(1 for n, _ in secs if n.endswith(".attn"))
    heads = int(next(v["heads"] for n, v in secs if n.endswith(".attn")))
    T = int(kv["net"]["input"])
    net = ini_torch.IniNet(secs, (T,), kv["net"].get("output"))
    with torch.no_grad():  # GPT-2's initialisation: normal 0.02, biases 0, layer norms 1
        for name, prm in net.named_parameters():
            if "ln_" in name:
                continue
            if name.endswith("bias"):
                prm.zero_()
            else:
                prm.normal_(0.0, 0.02)
    w = net.dlcl_state()
    tmp = tempfile.mkdtemp(prefix="dlcl-gen-")
    path = os.path.join(tmp, "gpt2.safetensors")
    save_safetensors({"transformer." + k: v for k, v in w.items()}, path)
    prompt = [(i * 7919) % vocab for i in range(a.prompt)]
    print(f"CPU: {cpu_name()}; torch {torch.__version__} with {a.threads} threads; GPT-2 {layers} layers, context {T}, "
          f"vocab {vocab}; prompt {a.prompt} tokens, {a.tokens} new, greedy, batch 1")
    cmd = [os.path.join(tools, "dlcl-generate"), config, "--weights", path, "--prompt-tokens",
           ",".join(map(str, prompt)), "--tokens", str(a.tokens), "--temperature", "0"]
    for s in a.set:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True)
    m = re.search(r"(\d+) tokens in ([0-9.]+) s", p.stderr)
    if p.returncode != 0 or m is None:
        sys.stderr.write(p.stdout[-2000:] + p.stderr[-2000:])
        raise SystemExit("dlcl-generate failed")
    dl_tokens, dl_secs = [int(t) for t in p.stdout.split()], float(m.group(2))
    t_tokens, t_secs = torch_generate(w, layers, heads, prompt, a.tokens)
    same = sum(1 for x, y in zip(dl_tokens, t_tokens) if x == y)
    print(f"dlcl {a.tokens / dl_secs:.1f} tokens/s ({dl_secs:.2f} s), torch {a.tokens / t_secs:.1f} tokens/s "
          f"({t_secs:.2f} s), time ratio dlcl/torch {dl_secs / t_secs:.2f}; same tokens: {same} of {a.tokens}")


if __name__ == "__main__":
    main()
