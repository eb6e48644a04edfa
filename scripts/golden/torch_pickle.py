#!/usr/bin/python3
"""Fixtures for emkit's PyTorch checkpoint reader (io/torch_pickle, tensor/torch_pickle, models/torchvision_names).

Reference: Debian's python3-torch 1.13 (torch.save) and python3-torchvision 0.14. Run from the repo root:
    /usr/bin/python3 scripts/golden/torch_pickle.py
Writes tests/golden/torch_pickle/:
  state_dict.pth          torch.save(module.state_dict()): an OrderedDict with _metadata (BUILD), int64 scalars
  checkpoint.pth          {"model": state dict, "optimizer": SGD state (tensors under int keys), "epoch", ...}
  protocol4.pth           the state dict with pickle_protocol=4 (FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL)
  dataparallel.pth        nn.DataParallel(module).state_dict(): every name starts with "module."
  parameters.pth          a dict of nn.Parameter (torch._utils._rebuild_parameter)
  views.pth               views of shared storages (transposed, offset, narrowed, expanded), every storage dtype
  several_keys.pth        {"state_dict", "state_dict_ema", "optimizer"}: the known key "state_dict" is taken
  ambiguous.pth           {"encoder": ..., "decoder": ...}: tensors under two unknown keys
  legacy.pth              _use_new_zipfile_serialization=False (torch < 1.6's format): refused
  numpy.pth               a dict holding a numpy array: pickles numpy.core.multiarray._reconstruct: refused
  torchscript.pt          torch.jit.save of a scripted module: refused
  big_endian.pth, crc.pth, missing_storage.pth, storage_size.pth, compressed.pth: state_dict.pth with its zip
                          entries altered (byteorder "big", a flipped storage byte, a storage removed, a storage one
                          byte longer, storages deflated)
  bad_bool.pth            a bool tensor whose storage holds the byte 2
  expected.json           for each readable file: its tensors (name, dtype, shape, values as float lists)
  torchvision_resnet_{bottleneck,basic}.pth   small torchvision ResNets (torchvision's Bottleneck / BasicBlock,
                          _make_layer and forward; narrow widths so the files stay small), random weights and BN stats
  torchvision_resnet_{bottleneck,basic}.json  the HF ResNetConfig of the same architecture
  torchvision_resnet_io.pth   {"input": 1x3x32x32, "bottleneck": logits, "basic": logits} from torchvision's forward
                          in eval mode
  torchvision_resnet{50,18}_names.txt   torchvision's resnet50/resnet18 state-dict names and shapes (NAME\\tDIMS),
                          the real-size check of the name mapping against tests/golden/resnet{50,18}_hf_names.txt
and fuzz/seeds/torch_pickle/ (data.pkl of five files, two whole files).
"""
import collections
import io
import json
import os
import zipfile

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "torch_pickle")


def small_module():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(3, 2))
    with torch.no_grad():
        m[1].running_mean.copy_(torch.randn(3))
        m[1].running_var.copy_(torch.rand(3) + 0.5)
        m[1].num_batches_tracked.fill_(7)
    return m


def describe(tensors):
    out = []
    for name, t in tensors.items():
        out.append({"name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                    "values": t.detach().double().flatten().tolist()})
    return out


def rewrite(src, dst, change):
    """Copies the zip src to dst, entry by entry, through change(name, bytes) -> (name, bytes, compression) or None."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            r = change(info.filename, zin.read(info.filename))
            if r is None:
                continue
            name, data, compression = r
            zout.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=compression)


class TinyResNet(ResNet):
    """torchvision's ResNet with narrow stages: torchvision's own blocks, _make_layer and forward; only the widths
    (64/128/256/512 there) are parameters, so that the checkpoint stays a few KB."""

    def __init__(self, block, layers, stem, planes, num_classes):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes = stem
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, stem, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, planes[0], layers[0])
        self.layer2 = self._make_layer(block, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, planes[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[3] * block.expansion, num_classes)


def randomise(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0, 0.1)
                m.bias.normal_(0, 0.1)


def hf_config(block, stem, planes, layers, num_classes):
    return {
        "model_type": "resnet",
        "architectures": ["ResNetForImageClassification"],
        "num_channels": 3,
        "embedding_size": stem,
        "hidden_sizes": [p * block.expansion for p in planes],
        "depths": layers,
        "layer_type": "bottleneck" if block is Bottleneck else "basic",
        "hidden_act": "relu",
        "downsample_in_first_stage": False,
        # torchvision's Bottleneck strides its 3x3 conv ("ResNet v1.5"), as HF's default does
        "downsample_in_bottleneck": False,
        "id2label": {str(i): f"class_{i}" for i in range(num_classes)},
        "label2id": {f"class_{i}": i for i in range(num_classes)},
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    path = lambda name: os.path.join(OUT, name)
    expected = {}

    m = small_module()
    sd = m.state_dict()
    torch.save(sd, path("state_dict.pth"))
    expected["state_dict.pth"] = {"unwrapped": "", "tensors": describe(sd)}

    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(torch.randn(2, 2, 3, 3)).sum().backward()
    opt.step()
    sd_after = m.state_dict()
    torch.save({"model": sd_after, "optimizer": opt.state_dict(), "epoch": 3, "best_acc1": 0.75, "arch": "tiny",
                "tags": ["a", "b"], "flags": (True, False, None), "big": 2**40, "negative": -5},
               path("checkpoint.pth"))
    expected["checkpoint.pth"] = {"unwrapped": "model", "tensors": describe(sd_after)}

    torch.save(sd, path("protocol4.pth"), pickle_protocol=4)
    expected["protocol4.pth"] = {"unwrapped": "", "tensors": describe(sd)}

    dp = nn.DataParallel(m).state_dict()
    torch.save(dp, path("dataparallel.pth"))
    expected["dataparallel.pth"] = {"unwrapped": "", "stripped_module": True,
                                    "tensors": describe(collections.OrderedDict(
                                        (k[len("module."):], v) for k, v in dp.items()))}

    params = {"weight": nn.Parameter(torch.randn(2, 3)), "bias": nn.Parameter(torch.randn(3), requires_grad=False)}
    torch.save(params, path("parameters.pth"))
    expected["parameters.pth"] = {"unwrapped": "", "tensors": describe(params)}

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {
        "base": base,
        "transposed": base.t(),
        "offset": base[1:],
        "narrow": base[:, 2:5],
        "strided": base[::2, ::3],
        "expanded": torch.tensor([1.5, -2.0, 3.25]).expand(2, 3),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "half": torch.tensor([[0.5, -1.25], [65504.0, 1e-3]], dtype=torch.float16).t(),
        "bfloat16": torch.tensor([1.0, -3.5, 1e30, 0.1], dtype=torch.bfloat16)[1:],
        "int64": torch.tensor([2**62, -(2**40), 0, 7], dtype=torch.int64)[1:],
        "int32": torch.tensor([-7, 8, 9], dtype=torch.int32),
        "int16": torch.tensor([-300, 301], dtype=torch.int16),
        "int8": torch.tensor([-128, 127], dtype=torch.int8),
        "uint8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]).t(),
    }
    torch.save(views, path("views.pth"))
    expected["views.pth"] = {"unwrapped": "", "tensors": describe(views)}

    ema = {k: v * 2 if v.is_floating_point() else v for k, v in sd.items()}
    torch.save({"state_dict": sd, "state_dict_ema": ema, "optimizer": opt.state_dict(), "epoch": 1},
               path("several_keys.pth"))
    expected["several_keys.pth"] = {"unwrapped": "state_dict", "tensors": describe(sd)}
    torch.save({"encoder": {"w": torch.ones(2)}, "decoder": {"w": torch.zeros(2)}}, path("ambiguous.pth"))

    torch.save(sd, path("legacy.pth"), _use_new_zipfile_serialization=False)
    torch.save({"w": np.zeros(2, dtype=np.float32)}, path("numpy.pth"))
    torch.jit.save(torch.jit.script(nn.Linear(2, 1)), path("torchscript.pt"))

    src = path("state_dict.pth")
    stored = zipfile.ZIP_STORED
    rewrite(src, path("big_endian.pth"), lambda n, d: (n, d, stored))
    with zipfile.ZipFile(path("big_endian.pth"), "a") as z:
        z.writestr(zipfile.ZipInfo("state_dict/byteorder", date_time=(1980, 1, 1, 0, 0, 0)), b"big")
    # A flipped byte in storage 0: the entry's CRC no longer matches (the zip written with the old CRC).
    raw = bytearray(open(src, "rb").read())
    with zipfile.ZipFile(src) as z:
        info = z.getinfo("state_dict/data/0")
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    raw[info.header_offset + 30 + name_len + extra_len] ^= 0x40
    open(path("crc.pth"), "wb").write(bytes(raw))
    rewrite(src, path("missing_storage.pth"), lambda n, d: None if n == "state_dict/data/1" else (n, d, stored))
    rewrite(src, path("storage_size.pth"),
            lambda n, d: (n, d + b"\0" if n == "state_dict/data/1" else d, stored))
    torch.save({"flags": torch.tensor([True, False, True])}, path("bad_bool.pth"))
    rewrite(path("bad_bool.pth"), path("bad_bool.pth") + ".tmp",
            lambda n, d: (n, b"\x01\x02\x00" if n.endswith("/data/0") else d, stored))
    os.replace(path("bad_bool.pth") + ".tmp", path("bad_bool.pth"))
    rewrite(src, path("compressed.pth"),
            lambda n, d: (n, d, zipfile.ZIP_DEFLATED if "/data/" in n else stored))

    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")

    # torchvision ResNets against HF-named ones.
    torch.manual_seed(1)
    x = torch.randn(1, 3, 32, 32)
    io_out = {"input": x}
    # Stage 3 keeps stage 2's width: its shortcut exists for the stride alone.
    for label, block, stem, planes, layers in [("bottleneck", Bottleneck, 4, [2, 4, 4, 8], [2, 1, 1, 1]),
                                               ("basic", BasicBlock, 2, [2, 4, 4, 8], [2, 1, 1, 1])]:
        model = TinyResNet(block, layers, stem, planes, num_classes=5)
        randomise(model)
        model.eval()
        with torch.no_grad():
            io_out[label] = model(x)
        torch.save(model.state_dict(), path(f"torchvision_resnet_{label}.pth"))
        with open(path(f"torchvision_resnet_{label}.json"), "w") as f:
            json.dump(hf_config(block, stem, planes, layers, 5), f, indent=2)
            f.write("\n")
    torch.save(io_out, path("torchvision_resnet_io.pth"))

    for name, fn in [("resnet50", torchvision.models.resnet50), ("resnet18", torchvision.models.resnet18)]:
        with open(path(f"torchvision_{name}_names.txt"), "w") as f:
            for k, v in fn().state_dict().items():
                f.write(f"{k}\t{','.join(str(d) for d in v.shape)}\n")

    # The fuzz target's seeds (fuzz/fuzz_torch_pickle.cpp): data.pkl alone, and two whole small files.
    seeds = os.path.join(OUT, "..", "..", "..", "fuzz", "seeds", "torch_pickle")
    os.makedirs(seeds, exist_ok=True)
    for n in ["state_dict", "views", "checkpoint", "protocol4", "parameters"]:
        with zipfile.ZipFile(path(n + ".pth")) as z, open(os.path.join(seeds, n + ".pkl"), "wb") as f:
            f.write(z.read(n + "/data.pkl"))
    for n in ["state_dict", "views"]:
        with open(path(n + ".pth"), "rb") as src, open(os.path.join(seeds, n + ".pth"), "wb") as f:
            f.write(src.read())

    total = sum(os.path.getsize(path(n)) for n in os.listdir(OUT))
    print(f"wrote {len(os.listdir(OUT))} files, {total} bytes, to {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
