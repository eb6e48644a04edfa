#!/usr/bin/python3
"""Goldens for em::models::preprocess_image with Hub image processors, from the reference steps HF transformers'
PIL-based ("slow") processors run: Pillow's Image.resize with the processor's `resample`, numpy's crop, rescale
(float64 * rescale_factor, then float32) and normalise ((x - mean) / std in float32).

The sizes follow transformers' rules, restated here (not imported; transformers is not installed):
  - ConvNextImageProcessor, size.shortest_edge n < 384 (an integer "size" is n): short side -> int(n / crop_pct), the
    long side int(that * long / short) (get_resize_output_image_size, default_to_square=False); then center_crop to
    n x n with top = (h - n) // 2, left = (w - n) // 2. n >= 384: resize to n x n, no crop.
  - ViTImageProcessor / SegformerImageProcessor: resize to size.height x size.width.

Run with Debian's python3 (Pillow 9.4, numpy):  /usr/bin/python3 scripts/golden/image_processors.py
Writes tests/golden/image_processors.json: per case the processor config, the image (a repository file or one of
../shared/data/images), the output shape, and a checksum set of the float32 tensor: per channel the mean of each of
8 x 8 blocks (row/column bounds i * H // 8) and 64 single values at (c, y, x) = (k % 3, (k * 37) % H, (k * 101) % W).
"""
import json
import os
import sys

import numpy as np
import PIL
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared")
OUT = os.path.join(ROOT, "tests", "golden", "image_processors.json")

# microsoft/resnet-50's preprocessor_config.json as the Hub serves it, and the form newer transformers write.
RESNET50 = {"crop_pct": 0.875, "do_normalize": True, "do_resize": True,
            "feature_extractor_type": "ConvNextFeatureExtractor", "image_mean": [0.485, 0.456, 0.406],
            "image_std": [0.229, 0.224, 0.225], "resample": 3, "size": 224}
RESNET50_NEW = {"crop_pct": 0.875, "do_normalize": True, "do_rescale": True, "do_resize": True,
                "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "ConvNextImageProcessor",
                "image_std": [0.229, 0.224, 0.225], "resample": 3, "rescale_factor": 0.00392156862745098,
                "size": {"shortest_edge": 224}}


def processor_class(config):
    name = config.get("image_processor_type") or config.get("feature_extractor_type", "")
    return name.replace("FeatureExtractor", "ImageProcessor")


def reference(image, config):
    """The float32 [3, H, W] tensor HF's slow processor makes of a PIL RGB image with this config."""
    convnext = processor_class(config) == "ConvNextImageProcessor"
    resample = config.get("resample", 3 if convnext else 2)
    size = config.get("size", {"shortest_edge": 384} if convnext else {"height": 224, "width": 224})
    w, h = image.size
    crop = None
    if convnext:
        n = size if isinstance(size, int) else size["shortest_edge"]
        crop_pct = config.get("crop_pct") or 224 / 256
        if n < 384:
            short_target = int(n / crop_pct)
            short, long = (w, h) if w <= h else (h, w)
            long_target = int(short_target * long / short)
            new_h, new_w = (long_target, short_target) if w <= h else (short_target, long_target)
            crop = n
        else:
            new_h, new_w = n, n
    else:
        new_h, new_w = (size, size) if isinstance(size, int) else (size["height"], size["width"])
    arr = np.array(image.resize((new_w, new_h), resample=resample))
    if crop is not None:
        top, left = (arr.shape[0] - crop) // 2, (arr.shape[1] - crop) // 2
        arr = arr[top:top + crop, left:left + crop]
    x = (arr.astype(np.float64) * config.get("rescale_factor", 1 / 255)).astype(np.float32)
    mean = np.array(config.get("image_mean", [0.5, 0.5, 0.5]), dtype=np.float32)
    std = np.array(config.get("image_std", [0.5, 0.5, 0.5]), dtype=np.float32)
    x = (x - mean) / std
    return x.transpose(2, 0, 1), {"resize": [new_h, new_w], "crop": crop}


def checksums(t):
    c, h, w = t.shape
    blocks = []
    for ch in range(c):
        for i in range(8):
            for j in range(8):
                block = t[ch, i * h // 8:(i + 1) * h // 8, j * w // 8:(j + 1) * w // 8].astype(np.float64)
                blocks.append(float(block.mean()))
    samples = [float(t[k % 3, (k * 37) % h, (k * 101) % w]) for k in range(64)]
    return {"block_means": blocks, "samples": samples}


def main():
    cases = []
    specs = [
        ("microsoft/resnet-50's Hub file on a 451x300 photo", RESNET50, "shared", "data/images/chelsea.png"),
        ("microsoft/resnet-50 in the ConvNextImageProcessor form", RESNET50_NEW, "shared", "data/images/chelsea.png"),
        ("ConvNext: odd crop offsets, lanczos", {"image_processor_type": "ConvNextImageProcessor", "crop_pct": 0.9,
                                                 "resample": 1, "size": {"shortest_edge": 97},
                                                 "image_mean": [0.485, 0.456, 0.406],
                                                 "image_std": [0.229, 0.224, 0.225]},
         "shared", "data/images/coffee.png"),
        ("ConvNext from 384: a square resize, no crop; bicubic and mean/std 0.5 by default",
         {"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 384}},
         "shared", "data/images/chelsea.png"),
        ("ViT height x width with hamming, a gray photo", {"image_processor_type": "ViTImageProcessor",
                                                          "resample": 5, "size": {"height": 45, "width": 61},
                                                          "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]},
         "shared", "data/images/camera.png"),
        ("ConvNext on a repository image (portrait: 40 wide, 60 high after a transpose)",
         {"image_processor_type": "ConvNextImageProcessor", "crop_pct": 0.875, "resample": 3, "size": 32,
          "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]},
         "repo", "tests/golden/image/rgb_60x40.png"),
        ("Segformer box filter, a repository image", {"image_processor_type": "SegformerImageProcessor",
                                                     "resample": 4, "size": {"height": 17, "width": 23},
                                                     "image_mean": [0.485, 0.456, 0.406],
                                                     "image_std": [0.229, 0.224, 0.225]},
         "repo", "tests/golden/image/rgb_37x23.png"),
    ]
    for name, config, where, path in specs:
        full = os.path.join(SHARED if where == "shared" else ROOT, path)
        image = Image.open(full).convert("RGB")
        if name.startswith("ConvNext on a repository image"):
            image = image.transpose(Image.TRANSPOSE)  # portrait: the short side is the width
        t, geometry = reference(image, config)
        cases.append({"name": name, "config": config, where: path, "transpose": image.size[0] < image.size[1]
                      and where == "repo", "input_size": list(image.size), "geometry": geometry,
                      "shape": list(t.shape), **checksums(t)})
    meta = {"generator": "scripts/golden/image_processors.py",
            "versions": {"Pillow": PIL.__version__, "numpy": np.__version__}, "cases": cases}
    with open(OUT, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
