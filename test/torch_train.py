#!/usr/bin/python3
"""Training against PyTorch, in TAP: a net with branches and batch norm (conv, batchnorm,
residual add, pooling, upsampling, concat, dense, 1-d batch norm) trained by dlcl-train
for 20 steps from the same initial weights as the same net in torch (test/ini_torch.py),
with sgd, adam and adamw, clipping, warm-up, no_decay and label smoothing: the epoch's
loss, every weight, the batch-norm running statistics and num_batches_tracked must agree;
then dlcl-eval's logits in evaluation mode (running statistics) against torch's.

Usage: torch_train.py TOOLS_DIR"""
import os
import struct
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # not a failure of dlcl: report a skip
    print("1..0 # SKIP PyTorch not importable: %s" % e)
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import ini_torch  # noqa: E402
from pth2safetensors import load_safetensors, save_safetensors  # noqa: E402

TOOLS = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="dlcl-torch-train-")
count = failed = 0
N, BATCH, C, H, W, CLASSES = 120, 6, 1, 10, 10, 5


def report(ok, name, detail=""):
    global failed, count
    count += 1
    if not ok:
        failed += 1
        for line in detail.splitlines():
            print("# " + line)
    print("%s %d - %s" % ("ok" if ok else "not ok", count, name), flush=True)


def write_idx(path, arr):
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x800 | arr.ndim))
        for d in arr.shape:
            f.write(struct.pack(">I", d))
        f.write(arr.tobytes())


LAYERS = """
[c1]
type = conv
filters = 6
size = 3
pad = 1
bias = 0
[bn1]
type = batchnorm
activation = relu
[c2]
type = conv
filters = 6
size = 3
pad = 1
bias = 0
[bn2]
type = batchnorm
momentum = 0.2
[sum]
type = add
input = bn2, bn1
activation = relu
[p1]
type = maxpool
size = 2
stride = 2
[c3]
type = conv
filters = 4
size = 1
activation = relu
[up]
type = upsample
scale = 2
[cat]
type = concat
input = sum, up
[p2]
type = avgpool
size = 2
stride = 2
[flat]
type = flatten
[fc1]
type = dense
units = 16
activation = tanh
[bn3]
type = batchnorm
eps = 1e-3
[fc]
type = dense
units = 5
"""

OPTIMIZERS = {
    "adamw_clip_warmup_no_decay_smoothing": "type = adamw\nlearning_rate = 0.01\nweight_decay = 0.05\n"
                                           "clip_grad_norm = 0.5\nwarmup_steps = 7\nno_decay = bias, batchnorm\n"
                                           "label_smoothing = 0.1\nbetas = 0.8, 0.99\neps = 1e-7\n",
    "adam_weight_decay": "type = adam\nlearning_rate = 0.005\nweight_decay = 0.001\n",
    "sgd_nesterov_clip": "type = sgd\nlearning_rate = 0.05\nmomentum = 0.9\nnesterov = 1\nweight_decay = 5e-4\n"
                         "clip_grad_norm = 1.0\nno_decay = batchnorm\n",
}


def torch_train(net, opt_kv, x, y):
    """20 steps as dlcl does them; returns the epoch's summed loss."""
    kind = opt_kv["type"]
    lr = float(opt_kv["learning_rate"])
    wd = float(opt_kv.get("weight_decay", 0))
    nd = [s.strip() for s in opt_kv.get("no_decay", "").split(",") if s.strip()]
    decay, no_decay = [], []
    for name, p in net.named_parameters():
        dname = net.dlcl_name(name)
        layer = net.mods[dname.rsplit(".", 1)[0].replace(".", "__")]
        exempt = ("bias" in nd and dname.endswith(".bias")) or ("batchnorm" in nd and layer.type == "batchnorm")
        (no_decay if exempt else decay).append(p)
    groups = [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]
    if kind == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=float(opt_kv.get("momentum", 0)),
                              nesterov=opt_kv.get("nesterov", "0") == "1")
    else:
        betas = tuple(float(v) for v in opt_kv.get("betas", "0.9, 0.999").split(","))
        cls = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        opt = cls(groups, lr=lr, betas=betas, eps=float(opt_kv.get("eps", 1e-8)))
    warm = int(opt_kv.get("warmup_steps", 0))
    clip = float(opt_kv.get("clip_grad_norm", 0))
    smooth = float(opt_kv.get("label_smoothing", 0))
    total = 0.0
    net.train()
    for step in range(N // BATCH):
        for g in opt.param_groups:
            g["lr"] = lr * (min(1.0, (step + 1) / warm) if warm else 1.0)
        xb, yb = x[step * BATCH:(step + 1) * BATCH], y[step * BATCH:(step + 1) * BATCH]
        opt.zero_grad()
        loss = F.cross_entropy(net(xb), yb, label_smoothing=smooth)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
        opt.step()
        total += loss.item() * BATCH
    return total


def main():
    torch.manual_seed(3)
    rng = np.random.default_rng(5)
    imgs = rng.integers(0, 256, size=(N, H, W), dtype=np.uint8)
    labels = rng.integers(0, CLASSES, size=N, dtype=np.uint8)
    for split in ("train", "test"):
        write_idx(f"{tmp}/{split}-images", imgs)
        write_idx(f"{tmp}/{split}-labels", labels)
    scale, mean, std = np.float32(1 / 255), np.float32(0.4), np.float32(0.3)
    x = torch.from_numpy(((imgs.astype(np.float32) * scale - mean) / std).reshape(N, C, H, W))
    y = torch.from_numpy(labels.astype(np.int64))
    for oname, opt_text in OPTIMIZERS.items():
        cfg_path = f"{tmp}/{oname}.ini"
        ckpt = f"{tmp}/{oname}.safetensors"
        with open(cfg_path, "w") as f:
            f.write(f"[net]\ninput = {C},{H},{W}\nclasses = {CLASSES}\nbatch = {BATCH}\nepochs = 1\nseed = 2\n"
                    f"checkpoint = {ckpt}\n[optimizer]\n{opt_text}[data]\nformat = idx\n"
                    f"train_images = {tmp}/train-images\ntrain_labels = {tmp}/train-labels\n"
                    f"test_images = {tmp}/test-images\ntest_labels = {tmp}/test-labels\nscale = {1 / 255!r}\n"
                    f"mean = 0.4\nstd = 0.3\nshuffle = 0\n{LAYERS}")
        sections = ini_torch.read_sections(cfg_path)
        net = ini_torch.IniNet(sections, (C, H, W))
        init = f"{tmp}/{oname}-init.safetensors"
        save_safetensors(net.dlcl_state(), init)
        p = subprocess.run([f"{TOOLS}/dlcl-train", cfg_path, "--resume", init], capture_output=True, text=True)
        report(p.returncode == 0, f"{oname}: dlcl_train_runs_20_steps", p.stdout[-2000:] + p.stderr[-2000:])
        if p.returncode != 0:
            continue
        opt_kv = dict(s for s in sections if s[0] == "optimizer")["optimizer"]
        loss_sum = torch_train(net, opt_kv, x, y)
        got, _ = load_safetensors(ckpt)
        with open(ckpt[:-len(".safetensors")] + ".csv") as f:  # epoch,train_loss,... with 6 decimals
            dl_loss = float(f.read().splitlines()[1].split(",")[1])
        report(abs(dl_loss - loss_sum / N) <= 2e-6 + 1e-5 * abs(loss_sum / N), f"{oname}: epoch_loss_matches_torch",
               f"dlcl {dl_loss:.6f}, torch {loss_sum / N:.6f} (mean over the epoch)")
        want = net.dlcl_state()
        bad = []
        for k, t in want.items():
            g = got.get(k)
            if g is None or g.shape != t.shape:
                bad.append(f"{k}: missing or shape {None if g is None else tuple(g.shape)}")
                continue
            if t.dtype == torch.int64:
                if not torch.equal(g, t):
                    bad.append(f"{k}: {g.tolist()} vs {t.tolist()}")
                continue
            err = (g - t).abs().max().item()
            scale_ = t.abs().max().item() + 1e-3
            if err > 2e-4 * scale_ + 1e-5:
                bad.append(f"{k}: max difference {err:.3g} (scale {scale_:.3g})")
        extra = sorted(set(got) - set(want))
        report(not bad and not extra, f"{oname}: weights_running_stats_and_counters_match_torch",
               "\n".join(bad[:10] + [f"extra tensor {e}" for e in extra]))
        # evaluation mode: batch norm from the running statistics
        logits = f"{tmp}/{oname}.logits"
        p = subprocess.run([f"{TOOLS}/dlcl-eval", cfg_path, "--weights", ckpt, "--logits", logits],
                           capture_output=True, text=True)
        ok = p.returncode == 0
        detail = p.stdout[-1000:] + p.stderr[-1000:]
        if ok:
            dl = torch.from_numpy(np.fromfile(logits, dtype=np.float32).reshape(N, CLASSES))
            net.eval()
            with torch.no_grad():
                tl = net(x)
            err = (dl - tl).abs().max().item()
            ok = err <= 1e-4 * (tl.abs().max().item() + 1e-3)
            detail = f"max logit difference {err:.3g}"
        report(ok, f"{oname}: eval_logits_match_torch", detail)
    print(f"1..{count}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
