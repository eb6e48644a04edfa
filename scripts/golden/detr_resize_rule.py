#!/usr/bin/env python3
"""Goldens for em::data::detr_resize_size (lib/em/data/detection_transforms.cpp): the output (height, width) of HF
DetrImageProcessor's resize with size {"shortest_edge": S, "longest_edge": L}, i.e. transformers'
image_transforms.get_size_with_aspect_ratio, transcribed below line for line from huggingface/transformers
src/transformers/image_transforms.py @ 000593ad84f26043f62917c541c57c4b71b9bc94 (transformers is not installed here).
Python semantics matter: round() rounds half to even, int() truncates, `/` is float division.

    /usr/bin/python3 scripts/golden/detr_resize_rule.py > tests/golden/detr_resize.json
"""
import json
import random


def get_size_with_aspect_ratio(image_size, size, max_size=None):
    # --- transcribed from transformers (see module docstring) ---
    height, width = image_size
    raw_size = None
    if max_size is not None:
        min_original_size = float(min((height, width)))
        max_original_size = float(max((height, width)))
        if max_original_size / min_original_size * size > max_size:
            raw_size = max_size * min_original_size / max_original_size
            size = int(round(raw_size))

    if (height <= width and height == size) or (width <= height and width == size):
        oh, ow = height, width
    elif width < height:
        ow = size
        if max_size is not None and raw_size is not None:
            oh = int(raw_size * height / width)
        else:
            oh = int(size * height / width)
    else:
        oh = size
        if max_size is not None and raw_size is not None:
            ow = int(raw_size * width / height)
        else:
            ow = int(size * width / height)

    return (oh, ow)


def main():
    cases = []
    # Real COCO sizes at DETR's default 800 / 1333, and the coco-mini images at small sizes (longest = round(1333*S/800)).
    fixed = [(480, 640), (427, 640), (360, 640), (640, 480), (640, 427), (333, 500), (500, 333), (800, 1333),
             (1333, 800), (600, 1000), (1000, 600), (100, 200), (200, 100), (1, 1000), (1000, 1), (800, 800),
             (799, 1332), (1080, 1920), (1920, 1080), (3000, 4000), (37, 23), (23, 37)]
    for h, w in fixed:
        for size, max_size in [(800, 1333), (256, 427), (128, 213), (512, 853), (64, 107), (800, None)]:
            cases.append((h, w, size, max_size))
    rng = random.Random(20240601)
    for _ in range(300):
        h, w = rng.randint(1, 4096), rng.randint(1, 4096)
        size = rng.randint(16, 1400)
        max_size = None if rng.random() < 0.2 else size + rng.randint(1, 2 * size)
        cases.append((h, w, size, max_size))
    out = []
    for h, w, size, max_size in cases:
        oh, ow = get_size_with_aspect_ratio((h, w), size, max_size)
        out.append({"height": h, "width": w, "shortest_edge": size, "longest_edge": max_size or 0,
                    "out_height": oh, "out_width": ow})
    print(json.dumps({"source": "transformers image_transforms.get_size_with_aspect_ratio @ 000593ad84f2",
                      "cases": out}, indent=0))


if __name__ == "__main__":
    main()
