#!/usr/bin/python3
"""Golden parameter/buffer names and shapes of HF transformers' ResNetForImageClassification for microsoft/resnet-50
and microsoft/resnet-18 (1000 ImageNet labels), for tests/unit/models/test_resnet.cpp.

transformers is not installed here, so the names come from torchvision's resnet50/resnet18 state dicts renamed to HF
names, the way ../shared/fixtures/README.md says the fixture makers validated HF's modeling_resnet.py against
torchvision (max |diff| 0 with renamed weights): conv1/bn1 -> resnet.embedder.embedder.{convolution,normalization},
layer{s+1}.{l}.conv{i+1}/bn{i+1} -> resnet.encoder.stages.{s}.layers.{l}.layer.{i}.{convolution,normalization},
layer{s+1}.{l}.downsample.{0,1} -> ...layers.{l}.shortcut.{convolution,normalization}, fc -> classifier.1.
torchvision's resnet50 is "v1.5" (stride in the 3x3 conv), which is HF's downsample_in_bottleneck=false.

Run: /usr/bin/python3 scripts/golden/resnet_hf_names.py   (writes tests/golden/resnet{50,18}_hf_names.txt)
Each line: NAME<TAB>comma-separated shape (empty for a scalar), sorted by name; num_batches_tracked included.
"""
import os
import re

import torchvision

CONV_BN = re.compile(r"^layer(\d)\.(\d+)\.(conv|bn)(\d)\.(.+)$")
DOWNSAMPLE = re.compile(r"^layer(\d)\.(\d+)\.downsample\.([01])\.(.+)$")


def hf_name(name: str) -> str:
    if name.startswith("conv1."):
        return "resnet.embedder.embedder.convolution." + name[len("conv1."):]
    if name.startswith("bn1."):
        return "resnet.embedder.embedder.normalization." + name[len("bn1."):]
    if name.startswith("fc."):
        return "classifier.1." + name[len("fc."):]
    m = CONV_BN.match(name)
    if m:
        stage, layer, kind, index, leaf = m.groups()
        part = "convolution" if kind == "conv" else "normalization"
        return f"resnet.encoder.stages.{int(stage) - 1}.layers.{layer}.layer.{int(index) - 1}.{part}.{leaf}"
    m = DOWNSAMPLE.match(name)
    if m:
        stage, layer, index, leaf = m.groups()
        part = "convolution" if index == "0" else "normalization"
        return f"resnet.encoder.stages.{int(stage) - 1}.layers.{layer}.shortcut.{part}.{leaf}"
    raise ValueError(f"unmapped torchvision name {name}")


def main() -> None:
    out_dir = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden")
    for arch in ("resnet50", "resnet18"):
        model = getattr(torchvision.models, arch)(weights=None, num_classes=1000)
        rows = sorted((hf_name(k), ",".join(str(d) for d in v.shape)) for k, v in model.state_dict().items())
        path = os.path.join(out_dir, f"{arch}_hf_names.txt")
        with open(path, "w") as f:
            for name, shape in rows:
                f.write(f"{name}\t{shape}\n")
        print(f"{path}: {len(rows)} tensors")


if __name__ == "__main__":
    main()
