"""A dlcl net config as a torch.nn.Module, for the tests and benchmarks that compare the two.

    net = IniNet(sections, input_shape)      sections: [(name, {key: value})] in file order,
                                             as read from an expanded config (no [vars] or
                                             [for] left: see expanded_sections)
    net.load_dlcl(tensors)                   dlcl checkpoint names -> this module
    net.dlcl_state()                         this module -> dlcl checkpoint names

Every layer type of dlcl has its torch twin here (conv, dense, pooling, dropout, activation,
add, concat, upsample, identity, flatten, batchnorm), the graph is run in the same
topological order dlcl uses, and tensors carry dlcl's names (`<section>.weight`, ...), so a
state_dict maps one to one. Only what dlcl means by each key is implemented; unknown keys
raise.
"""
import configparser
import subprocess

import torch
import torch.nn as nn
import torch.nn.functional as F

RESERVED = ("net", "optimizer", "data", "vars")
ACTS = {
    "linear": lambda x, s: x,
    "relu": lambda x, s: F.relu(x),
    "sigmoid": lambda x, s: torch.sigmoid(x),
    "tanh": lambda x, s: torch.tanh(x),
    "gelu": lambda x, s: F.gelu(x),
    "gelu_tanh": lambda x, s: F.gelu(x, approximate="tanh"),
    "leaky": lambda x, s: F.leaky_relu(x, s),
}


def read_sections(path):
    """[(name, {key: value})] of a plain INI file, in file order."""
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    cp.optionxform = str
    cp.read(path)
    return [(s, dict(cp[s])) for s in cp.sections()]


def expanded_sections(tools_dir, config, sets=()):
    """The sections of config after dlcl expands [vars], [for] and `if` (dlcl-train --expand)."""
    cmd = [f"{tools_dir}/dlcl-train", config, "--expand"]
    for s in sets:
        cmd += ["--set", s]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string(text)
    return [(s, dict(cp[s])) for s in cp.sections()]


class Layer(nn.Module):
    """One section: its torch module (parameters under dlcl's names) and its function."""

    def __init__(self, name, kv, in_shapes):
        super().__init__()
        self.name, self.kv, self.type = name, dict(kv), kv["type"]
        self.used = {"type", "input"}
        self.act = ACTS[self.get("activation", "linear")]
        self.slope = float(self.get("slope", 0.01))
        t, s = self.type, in_shapes[0]
        if t == "conv":
            size, g = int(self.get("size")), int(self.get("groups", 1))
            self.mod = nn.Conv2d(s[0], int(self.get("filters")), size, int(self.get("stride", 1)), int(self.get("pad", 0)),
                                 int(self.get("dilation", 1)), g, bias=self.get("bias", "1") in ("1", "true", "yes", "on"))
        elif t == "dense":
            n = 1
            for d in s:
                n *= d
            self.mod = nn.Linear(n, int(self.get("units")), bias=self.get("bias", "1") in ("1", "true", "yes", "on"))
        elif t in ("maxpool", "avgpool"):
            size = int(self.get("size", 2))
            args = (size, int(self.get("stride", size)), int(self.get("pad", 0)))
            self.mod = nn.MaxPool2d(*args) if t == "maxpool" else nn.AvgPool2d(*args)
        elif t == "batchnorm":
            affine = self.get("affine", "1") in ("1", "true", "yes", "on")
            cls = nn.BatchNorm2d if len(s) == 3 else nn.BatchNorm1d
            self.mod = cls(s[0], eps=float(self.get("eps", 1e-5)), momentum=float(self.get("momentum", 0.1)),
                           affine=affine)
        elif t == "upsample":
            self.scale = int(self.get("scale", 2))
        elif t == "dropout":
            self.mod = nn.Dropout(float(self.get("rate", 0.5)))
        elif t not in ("global_avgpool", "activation", "add", "concat", "identity", "flatten"):
            raise ValueError(f"[{name}]: type {t} has no torch twin here")
        unknown = set(kv) - self.used
        if unknown:
            raise ValueError(f"[{name}]: keys {sorted(unknown)} not understood by ini_torch.py")

    def get(self, key, default=None):
        self.used.add(key)
        if key in self.kv:
            return self.kv[key]
        if default is None:
            raise KeyError(f"[{self.name}] needs {key}")
        return default

    def forward(self, xs):
        t, x = self.type, xs[0]
        if t == "conv":
            return self.act(self.mod(x), self.slope)
        if t == "dense":
            return self.act(self.mod(x.flatten(1)), self.slope)
        if t in ("maxpool", "avgpool", "dropout"):
            return self.mod(x)
        if t == "batchnorm":
            return self.act(self.mod(x), self.slope)
        if t == "global_avgpool":
            return F.adaptive_avg_pool2d(x, 1)
        if t == "activation":
            return self.act(x, self.slope)
        if t == "add":
            y = xs[0]
            for z in xs[1:]:
                y = y + z
            return self.act(y, self.slope)
        if t == "concat":
            return torch.cat(xs, dim=1)
        if t == "upsample":
            return F.interpolate(x, scale_factor=self.scale, mode="nearest")
        if t == "identity":
            return x
        if t == "flatten":
            return x.flatten(1)
        raise AssertionError(t)


class IniNet(nn.Module):
    def __init__(self, sections, input_shape, output=None):
        super().__init__()
        layers = [(n, kv) for n, kv in sections if n not in RESERVED]
        names = [n for n, _ in layers]
        inputs = {}
        for i, (n, kv) in enumerate(layers):
            v = kv.get("input")
            inputs[n] = [p.strip() for p in v.split(",")] if v else ["input" if i == 0 else names[i - 1]]
        order, placed = [], set()
        while len(order) < len(layers):  # Kahn's algorithm, earliest ready section first (as dlcl)
            for n, kv in layers:
                if n not in placed and all(p == "input" or p in placed for p in inputs[n]):
                    order.append((n, kv))
                    placed.add(n)
                    break
            else:
                raise ValueError("input= forms a cycle")
        self.order, self.inputs, self.output = [n for n, _ in order], inputs, output or names[-1]
        self.mods = nn.ModuleDict()
        shapes = {"input": tuple(input_shape)}
        with torch.no_grad():
            outs = {"input": torch.zeros((2,) + tuple(input_shape))}
            for n, kv in order:
                m = Layer(n, kv, [shapes[p] for p in inputs[n]])
                self.mods[n.replace(".", "__")] = m
                m.eval()
                outs[n] = m([outs[p] for p in inputs[n]])
                shapes[n] = tuple(outs[n].shape[1:])
        self.train()

    def forward(self, x):
        outs = {"input": x}
        for n in self.order:
            outs[n] = self.mods[n.replace(".", "__")]([outs[p] for p in self.inputs[n]])
        return outs[self.output].flatten(1)

    def dlcl_name(self, key):
        """'mods.layer1__0__conv1.mod.weight' -> 'layer1.0.conv1.weight'."""
        _, mod, _, suffix = key.split(".", 3)
        return mod.replace("__", ".") + "." + suffix

    def dlcl_state(self):
        return {self.dlcl_name(k): v for k, v in self.state_dict().items()}

    def load_dlcl(self, tensors):
        own = self.state_dict()
        missing = [k for k in own if self.dlcl_name(k) not in tensors]
        if missing:
            raise KeyError(f"missing {missing[:5]}")
        self.load_state_dict({k: tensors[self.dlcl_name(k)].to(own[k].dtype) for k in own}, strict=True)
