"""A dlcl net config as a torch.nn.Module, for the tests and benchmarks that compare the two.

    net = IniNet(sections, input_shape)      sections: [(name, {key: value})] in file order,
                                             as read from an expanded config (no [vars] or
                                             [for] left: see expanded_sections)
    net.load_dlcl(tensors)                   dlcl checkpoint names -> this module
    net.dlcl_state()                         this module -> dlcl checkpoint names

Every layer type of dlcl has its torch twin here (conv, dense, pooling, dropout, activation,
add, concat, upsample, identity, flatten, batchnorm; embedding, position_embedding,
layernorm, attention as Hugging Face's GPT-2 computes it, lstm, gru), the graph is run in the same
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
            n = s[-1] if len(s) == 2 else 1  # a sequence (T, D): at each position
            if len(s) != 2:
                for d in s:
                    n *= d
            units, bias = int(self.get("units")), self.get("bias", "1") in ("1", "true", "yes", "on")
            self.get("init_std", "0")
            self.tie = self.kv.get("tie")
            self.used.add("tie")
            self.conv1d = self.get("layout", "linear") == "conv1d"
            if self.tie:  # the weight is another layer's (set by IniNet), not a parameter of this one
                self.bias = nn.Parameter(torch.zeros(units)) if bias else None
            elif self.conv1d:  # Hugging Face's Conv1D: weight [in, out]
                self.weight = nn.Parameter(torch.randn(n, units) * 0.02)
                self.bias = nn.Parameter(torch.zeros(units)) if bias else None
            else:
                self.mod = nn.Linear(n, units, bias=bias)
        elif t == "embedding":
            self.mod = nn.Embedding(int(self.get("vocab")), int(self.get("dim")))
            nn.init.normal_(self.mod.weight, std=float(self.get("init_std", "1")))
        elif t == "position_embedding":
            std = float(self.get("init_std", "1"))
            self.weight = nn.Parameter(torch.randn(int(self.get("context")), int(self.get("dim"))) * std)
        elif t == "layernorm":
            self.mod = nn.LayerNorm(s[-1], eps=float(self.get("eps", 1e-5)),
                                    elementwise_affine=self.get("affine", "1") in ("1", "true", "yes", "on"))
        elif t == "attention":
            c, self.heads = s[-1], int(self.get("heads"))
            self.get("init_std", "0")
            bias = self.get("bias", "1") in ("1", "true", "yes", "on")
            self.drop = float(self.get("dropout", 0))
            self.c_attn, self.c_proj = nn.Module(), nn.Module()
            self.c_attn.weight = nn.Parameter(torch.randn(c, 3 * c) * 0.02)
            self.c_proj.weight = nn.Parameter(torch.randn(c, c) * 0.02)
            if bias:
                self.c_attn.bias = nn.Parameter(torch.zeros(3 * c))
                self.c_proj.bias = nn.Parameter(torch.zeros(c))
        elif t in ("lstm", "gru"):
            cls = nn.LSTM if t == "lstm" else nn.GRU
            self.mod = cls(s[-1], int(self.get("hidden")), int(self.get("layers", 1)), batch_first=True,
                           dropout=float(self.get("dropout", 0)), bias=self.get("bias", "1") in ("1", "true", "yes", "on"))
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

    def tied_weight(self):
        """The weight another layer's tie = NAME reads: an embedding's or a dense layer's."""
        if self.type == "embedding" or (self.type == "dense" and not self.conv1d and not self.tie):
            return self.mod.weight
        if self.type == "dense" and self.conv1d:
            return self.weight
        raise ValueError(f"[{self.name}]: tie to a {self.type} is not supported here")

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
            if x.dim() != 3:
                x = x.flatten(1)
            if self.tie:
                y = F.linear(x, self.tied[0].tied_weight(), self.bias)
            elif self.conv1d:
                y = x @ self.weight + (self.bias if self.bias is not None else 0)
            else:
                y = self.mod(x)
            return self.act(y, self.slope)
        if t == "embedding":
            return self.mod(x)
        if t == "position_embedding":
            return x + self.weight[: x.shape[1]]
        if t == "layernorm":
            return self.mod(x)
        if t == "attention":
            B, T, C = x.shape
            H = self.heads
            qkv = x @ self.c_attn.weight + (self.c_attn.bias if hasattr(self.c_attn, "bias") else 0)
            q, k, v = (z.view(B, T, H, C // H).transpose(1, 2) for z in qkv.split(C, dim=2))
            att = (q @ k.transpose(-2, -1)) / (C // H) ** 0.5
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = F.dropout(att.masked_fill(~mask, float("-inf")).softmax(-1), self.drop, self.training)
            y = (att @ v).transpose(1, 2).reshape(B, T, C)
            y = y @ self.c_proj.weight + (self.c_proj.bias if hasattr(self.c_proj, "bias") else 0)
            return F.dropout(y, self.drop, self.training)
        if t in ("lstm", "gru"):
            return self.mod(x)[0]
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
        # the input holds token ids when an embedding reads it (as dlcl decides)
        self.tokens = any(kv["type"] == "embedding" and inputs[n][0] == "input" for n, kv in layers)
        with torch.no_grad():
            x0 = torch.zeros((2,) + tuple(input_shape), dtype=torch.long if self.tokens else torch.float32)
            outs = {"input": x0}
            for n, kv in order:
                m = Layer(n, kv, [shapes[p] for p in inputs[n]])
                self.mods[n.replace(".", "__")] = m
                if getattr(m, "tie", None):  # a plain list: the tied module is not registered twice
                    m.tied = [self.mods[m.tie.replace(".", "__")]]
                m.eval()
                outs[n] = m([outs[p] for p in inputs[n]])
                shapes[n] = tuple(outs[n].shape[1:])
        self.train()

    def forward(self, x):
        outs = {"input": x}
        for n in self.order:
            outs[n] = self.mods[n.replace(".", "__")]([outs[p] for p in self.inputs[n]])
        y = outs[self.output]
        return y if self.tokens or y.dim() == 3 else y.flatten(1)  # a sequence net: [B, T, classes]

    def dlcl_name(self, key):
        """'mods.layer1__0__conv1.mod.weight' -> 'layer1.0.conv1.weight',
        'mods.h__0__attn.c_attn.weight' -> 'h.0.attn.c_attn.weight'."""
        _, mod, rest = key.split(".", 2)
        if rest.startswith("mod."):
            rest = rest[4:]
        return mod.replace("__", ".") + "." + rest

    def dlcl_state(self):
        return {self.dlcl_name(k): v for k, v in self.state_dict().items()}

    def load_dlcl(self, tensors):
        own = self.state_dict()
        missing = [k for k in own if self.dlcl_name(k) not in tensors]
        if missing:
            raise KeyError(f"missing {missing[:5]}")
        self.load_state_dict({k: tensors[self.dlcl_name(k)].to(own[k].dtype) for k in own}, strict=True)
