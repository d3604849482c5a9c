#!/usr/bin/python3
"""Half-precision storage ([net] precision = fp16), reported in TAP. Activations and conv/dense
weights are stored as binary16 and computed in float, so the outputs move by the rounding of
every stored tensor; this test states how far and checks it:
- torchvision's ResNet-18 (random weights, batch norm statistics perturbed; exported by
  torch.onnx.export), a small net with the imported image operators and an MLP with
  LayerNormalization and Gelu (opset 17): dlcl fp16 against torch
  fp32, |error| <= TOL of the logits' scale, and every sample whose fp32 top-2 margin exceeds
  twice the error keeps its top-1 (the fp32 run must match torch within 1e-4 as before);
- ResNet-18's device memory in fp16 at most 65% of float32's (measured 60% at batch 4: the
  weights and activations halve, the workspace and biases stay float; a float copy of the
  weights beside the half one would make it 117%);
- a LeNet trained here on Fashion-MNIST for one short epoch: dlcl-eval fp32 and fp16 on the
  10,000 test images, accuracy within 0.2 points and top-1 agreement of 99.5% or more;
- the errors: fp16 for training, for a net with a layer that has no half path, and an unknown
  precision name.
The figures are printed as comments (top-1 agreement, max logit error).

Usage: fp16.py TOOLS_DIR ONNX_RUN SOURCE_ROOT"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torchvision
except ImportError as e:  # not a failure of dlcl
    print("1..0 # SKIP torch or torchvision not importable: %s" % e)
    sys.exit(0)

TOOLS, ONNX_RUN, ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = tempfile.mkdtemp(prefix="dlcl-fp16-")
ENV = dict(os.environ, DLCL_AUTOTUNE="0")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import report  # noqa: E402
from torch_models import resnet18_perturbed  # noqa: E402

# binary16 keeps 11 significant bits (relative rounding 2^-11 = 4.9e-4 per stored value); a
# ResNet-18 stores some 40 tensors on the way, whose errors partly cancel: measured 6.0e-4 of the
# logits' scale on the model below (4.2e-4 on the small net), bounded here at about 7 times that
TOL = 4e-3


def run(args):
    p = subprocess.run(args, capture_output=True, text=True, env=ENV)
    return p.returncode, p.stdout[-3000:] + p.stderr[-3000:]


def refused(rc, log, *words):
    """a clear error: a failing exit, the words in the message, and in a sanitizer build
    (README: Sanitizers) no report on the error path"""
    return (rc != 0 and all(w in log for w in words) and "Sanitizer" not in log and "runtime error:" not in log)


def export(model, x, name, opset):
    path = f"{tmp}/{name}.onnx"
    model.eval()
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
    return path


def logits(path, x, precision):
    xin, lg, pr = f"{tmp}/in.f32", f"{tmp}/{precision}.logits", f"{tmp}/{precision}.probs"
    x.numpy().astype(np.float32).tofile(xin)
    rc, log = run([ONNX_RUN, path, xin, str(len(x)), lg, pr, f"net.precision={precision}"])
    if rc != 0:
        return None, log
    return np.fromfile(lg, dtype=np.float32).reshape(len(x), -1), log


def agreement(got, want):
    """top-1 agreement, and whether every sample with a clear fp32 margin kept its top-1"""
    err = float(np.abs(got - want).max())
    top2 = np.sort(want, axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * err
    same = got.argmax(1) == want.argmax(1)
    return float(same.mean()), bool(same[clear].all()), int(clear.sum())


def check_fp16(name, model, x, opset=13):
    """returns the device MiB of each precision's net, as onnx_run printed them"""
    path = export(model, x[:1], name, opset)
    with torch.no_grad():
        want = model(x).numpy()
    scale = float(np.abs(want).max())
    mib = {}
    for precision, tol in (("fp32", 1e-4), ("fp16", TOL)):
        got, log = logits(path, x, precision)
        ok, detail = got is not None, log
        if ok:
            err = float(np.abs(got - want).max())
            agree, kept, clear = agreement(got, want)
            detail = (f"{precision}: max |dlcl - torch fp32| = {err:.3g} ({err / scale:.2e} of scale {scale:.3g}), "
                      f"top-1 agreement {agree:.3f}, {clear} of {len(x)} samples with a clear margin "
                      f"{'all kept' if kept else 'NOT all kept'}; {log.strip()}")
            print("# " + name + " " + detail)
            ok = err <= tol * scale and kept and f"precision={precision}" in log
            mib[precision] = float(log.split("device_mib=")[1].split()[0]) if "device_mib=" in log else None
        report(ok, f"{name}_{precision}_matches_torch_within_{tol:g}_of_scale", detail)
    return mib


class AllOps(nn.Module):
    """Conv, BatchNormalization, Relu, MaxPool, LeakyRelu, AveragePool, Sigmoid, Resize,
    Concat, Add, Tanh, GlobalAveragePool, Flatten, Gemm with Relu, Gemm."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 16, 1)
        self.c3 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.dw = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.f1 = nn.Linear(32, 24)
        self.f2 = nn.Linear(24, 10)

    def forward(self, x):
        x = torch.relu(self.b1(self.c1(x)))
        x = nn.functional.max_pool2d(x, 2)
        a = nn.functional.leaky_relu(self.c2(x), 0.1)
        b = torch.sigmoid(nn.functional.avg_pool2d(self.c3(x), 2))
        b = nn.functional.interpolate(b, scale_factor=2, mode="nearest")
        y = torch.cat([a, b], 1)
        y = torch.tanh(self.dw(y) + y)
        y = torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1)
        return self.f2(torch.relu(self.f1(y)))


class MlpLn(nn.Module):
    """Gemm, LayerNormalization, Gelu, Gemm (a transformer's MLP block on vectors)."""

    def __init__(self):
        super().__init__()
        self.f1, self.ln, self.f2 = nn.Linear(16, 32), nn.LayerNorm(32), nn.Linear(32, 10)

    def forward(self, x):
        return self.f2(nn.functional.gelu(self.ln(self.f1(x))))


def imported_models():
    mib = check_fp16("resnet18", resnet18_perturbed(5), torch.randn(4, 3, 224, 224))
    a, b = mib.get("fp32"), mib.get("fp16")
    report(a is not None and b is not None and b <= 0.65 * a, "resnet18_fp16_needs_at_most_65_percent_of_the_memory",
           f"device MiB at batch 4: fp32 {a}, fp16 {b}")
    print(f"# resnet18 device memory at batch 4: fp32 {a} MiB, fp16 {b} MiB")
    torch.manual_seed(6)
    m = AllOps()
    with torch.no_grad():
        m.b1.running_mean.uniform_(-0.1, 0.1)
        m.b1.running_var.uniform_(0.5, 2.0)
    check_fp16("all_ops", m.eval(), torch.randn(8, 3, 16, 16))
    torch.manual_seed(7)
    m = MlpLn()
    with torch.no_grad():
        m.ln.weight.uniform_(0.5, 1.5)
        m.ln.bias.uniform_(-0.2, 0.2)
    check_fp16("mlp_layernorm", m.eval(), torch.randn(8, 16), opset=17)


def trained_lenet():
    cfg = f"{ROOT}/examples/fashion_lenet.ini"
    ck = f"{tmp}/lenet.safetensors"
    rc, log = run([f"{TOOLS}/dlcl-train", cfg, "--set", "net.epochs=1", "--set", "data.train_samples=12000",
                   "--set", f"net.checkpoint={ck}"])
    if rc != 0:
        report(False, "lenet_trained_for_the_fp16_check", log)
        return
    got = {}
    for p in ("fp32", "fp16"):
        rc, log = run([f"{TOOLS}/dlcl-eval", cfg, "--weights", ck, "--set", f"net.precision={p}",
                       "--logits", f"{tmp}/lenet_{p}.logits"])
        if rc != 0:
            report(False, f"lenet_eval_{p}", log)
            return
        acc = float(log.split("accuracy=")[1].split()[0])
        got[p] = (acc, np.fromfile(f"{tmp}/lenet_{p}.logits", dtype=np.float32).reshape(-1, 10))
    (a32, l32), (a16, l16) = got["fp32"], got["fp16"]
    agree = float((l32.argmax(1) == l16.argmax(1)).mean())
    err, scale = float(np.abs(l32 - l16).max()), float(np.abs(l32).max())
    detail = (f"test accuracy fp32 {a32:.4f}, fp16 {a16:.4f}; top-1 agreement {agree:.4f} over {len(l32)} images; "
              f"max logit difference {err:.3g} ({err / scale:.2e} of scale {scale:.3g})")
    print("# lenet " + detail)
    report(abs(a32 - a16) <= 0.002 and agree >= 0.995, "trained_lenet_fp16_keeps_accuracy_and_top1", detail)


def errors():
    cfg = f"{ROOT}/examples/fashion_lenet.ini"
    rc, log = run([f"{TOOLS}/dlcl-train", cfg, "--set", "net.precision=fp16", "--set", "net.epochs=1"])
    report(refused(rc, log, "precision = fp16", "training keeps float32"), "fp16_training_is_refused_clearly", log)
    rc, log = run([f"{TOOLS}/dlcl-eval", cfg, "--set", "net.precision=fp8"])
    report(refused(rc, log, "fp8", "fp16"), "unknown_precision_names_the_choices", log)
    with open(f"{tmp}/lstm.ini", "w") as f:
        f.write("[net]\ninput = 8,4\nclasses = 3\nbatch = 2\nprecision = fp16\n[data]\nformat = synthetic\n"
                "[rnn]\ntype = lstm\nhidden = 6\n[fc]\ntype = dense\nunits = 3\n")
    x = torch.zeros(2, 8, 4)
    x.numpy().tofile(f"{tmp}/lstm.in")
    rc, log = run([ONNX_RUN, f"{tmp}/lstm.ini", f"{tmp}/lstm.in", "2", f"{tmp}/l.out", f"{tmp}/p.out"])
    report(refused(rc, log, "[rnn]", "lstm", "no half-precision path"), "fp16_names_the_layer_without_a_half_path",
           log)


imported_models()
trained_lenet()
errors()
import tap  # noqa: E402

print("1..%d" % tap.count)
sys.exit(1 if tap.failed else 0)
