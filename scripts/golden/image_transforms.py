#!/usr/bin/python3
"""Goldens for em::data transforms, from the reference implementations: Pillow's Image.resize with every filter
(NEAREST, LANCZOS, BILINEAR, BICUBIC, BOX, HAMMING; what HF image processors call) and torchvision's ToTensor + Normalize (rescale 1/255, ImageNet mean/std).

Run with Debian's python3 (Pillow, torch, torchvision):  /usr/bin/python3 scripts/golden/image_transforms.py
Writes tests/golden/image/. Inputs: crops of ../shared/data/images (public-domain skimage photos) stored as PNG
next to the outputs, so the unit tests need nothing outside the repository.
"""
import json
import os
import sys
import zlib

import PIL
import torch
import torchvision
from PIL import Image
from torchvision import transforms as T

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(ROOT, "..", "shared", "data", "images")
OUT = os.path.join(ROOT, "tests", "golden", "image")
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def main():
    os.makedirs(OUT, exist_ok=True)
    chelsea = Image.open(os.path.join(SHARED, "chelsea.png")).convert("RGB")
    camera = Image.open(os.path.join(SHARED, "camera.png"))
    assert camera.mode == "L"
    inputs = {
        "rgb_37x23": chelsea.crop((200, 60, 237, 83)),  # the cat's face: edges and texture
        "gray_29x31": camera.crop((220, 80, 249, 111)),
        "rgb_60x40": chelsea.resize((60, 40), Image.BILINEAR),
        "rgb_1x17": chelsea.crop((230, 70, 231, 87)),  # a 1-pixel side
    }
    sizes = {
        "rgb_37x23": [(13, 9), (100, 61), (37, 11), (20, 23), (5, 3), (74, 46), (1, 1)],
        "gray_29x31": [(28, 28), (11, 47)],
        "rgb_60x40": [(28, 28), (24, 16), (7, 5)],
        "rgb_1x17": [(1, 5), (3, 40), (2, 17)],
    }
    # PIL's codes 0..5 by name (the names em::data::filter_name gives).
    filters = (("bilinear", Image.BILINEAR), ("nearest", Image.NEAREST), ("lanczos", Image.LANCZOS),
               ("bicubic", Image.BICUBIC), ("box", Image.BOX), ("hamming", Image.HAMMING))
    cases = []
    for name, image in inputs.items():
        image.save(os.path.join(OUT, f"{name}.png"))
        for w, h in sizes[name]:
            for method, resample in filters:
                out_name = f"{name}_{method}_{w}x{h}.png"
                image.resize((w, h), resample).save(os.path.join(OUT, out_name))
                cases.append({"input": f"{name}.png", "method": method, "width": w, "height": h,
                              "output": out_name})

    # Classification preprocessing: RGB, resize to 28x28 (bilinear), ToTensor (x/255), Normalize(ImageNet).
    pipeline = T.Compose([T.Resize((28, 28), interpolation=T.InterpolationMode.BILINEAR), T.ToTensor(),
                          T.Normalize(MEAN, STD)])
    preprocess = []
    for name in ("rgb_60x40", "gray_29x31"):
        tensor = pipeline(inputs[name].convert("RGB"))
        preprocess.append({"input": f"{name}.png", "input_size": 28, "shape": list(tensor.shape),
                           "values": [round(float(v), 7) for v in tensor.flatten()]})

    # Decoding: the same small image in every format SPEC §2 lists, with the CRC-32 of the RGB pixels Pillow
    # decodes (lossless formats must match exactly; JPEG decoders may differ by a few levels).
    decode = []
    small = inputs["rgb_37x23"]
    for ext, kwargs in ((".bmp", {}), (".tga", {}), (".ppm", {}), (".gif", {}), (".jpg", {"quality": 95}),
                        (".png", {})):
        path = os.path.join(OUT, "rgb_37x23" + ext)
        if ext != ".png":
            small.save(path, **kwargs)
        decoded = Image.open(path).convert("RGB")
        decode.append({"file": "rgb_37x23" + ext, "width": decoded.width, "height": decoded.height,
                       "rgb_crc32": zlib.crc32(decoded.tobytes()), "lossless": ext != ".jpg"})
    gray = inputs["gray_29x31"]
    gray.save(os.path.join(OUT, "gray_29x31.pgm"))
    for name in ("gray_29x31.png", "gray_29x31.pgm"):
        decoded = Image.open(os.path.join(OUT, name)).convert("RGB")
        decode.append({"file": name, "width": decoded.width, "height": decoded.height,
                       "rgb_crc32": zlib.crc32(decoded.tobytes()), "lossless": True})
    for name in ("chelsea.png", "camera.png", "coffee.png", "astronaut.png"):
        decoded = Image.open(os.path.join(SHARED, name)).convert("RGB")
        decode.append({"shared": "data/images/" + name, "width": decoded.width, "height": decoded.height,
                       "rgb_crc32": zlib.crc32(decoded.tobytes()), "lossless": True})

    meta = {"generator": "scripts/golden/image_transforms.py",
            "versions": {"Pillow": PIL.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__},
            "decode": decode, "resize": cases, "preprocess_classification": preprocess}
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} resize cases and {len(preprocess)} preprocess cases to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
