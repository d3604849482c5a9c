"""Models the Python tests build with PyTorch (imported after their torch check)."""
import torch
import torch.nn as nn
import torchvision


def resnet18_perturbed(seed):
    """torchvision's ResNet-18 in eval mode, weights from torch.manual_seed(seed), batch norm
    running statistics moved off their initial 0 and 1 so that folding them is exercised"""
    torch.manual_seed(seed)
    m = torchvision.models.resnet18()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()
