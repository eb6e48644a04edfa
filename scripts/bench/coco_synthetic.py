#!/usr/bin/python3
"""Synthetic COCO ground truth + results for timing COCO box evaluation (em-metrics --algo detection, pycocotools).

    /usr/bin/python3 scripts/bench/coco_synthetic.py OUT_DIR [--images 5000] [--dets 100] [--gt 7] [--cats 80]

Writes OUT_DIR/ground_truth.json and OUT_DIR/results.json: IMAGES images with 0..2*GT boxes each over CATS
categories (small/medium/large sizes, 2% crowd), and exactly DETS detections per image, 70% of them jittered copies
of a ground-truth box (some with the wrong class), the rest random. The hidden Catch2 benchmark
(em_unit_tests "[.coco-bench]") builds the same kind of input in memory.
"""
import argparse
import json
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir")
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--dets", type=int, default=100)
    ap.add_argument("--gt", type=int, default=7)
    ap.add_argument("--cats", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    images, anns, dets = [], [], []
    cats = [{"id": c + 1, "name": f"class{c + 1}"} for c in range(a.cats)]
    ann_id = 1
    for img_id in range(1, a.images + 1):
        W, H = 640, 480
        images.append({"id": img_id, "file_name": f"{img_id:06d}.jpg", "width": W, "height": H})
        boxes = []
        for _ in range(int(rng.integers(0, 2 * a.gt + 1))):
            s = float(rng.choice([16.0, 64.0, 200.0]))
            w, h = float(rng.uniform(4, s)), float(rng.uniform(4, s))
            x, y = float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h))
            cat = int(rng.integers(1, a.cats + 1))
            crowd = int(rng.random() < 0.02)
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})
            ann_id += 1
            boxes.append(([x, y, w, h], cat))
        for _ in range(a.dets):
            if boxes and rng.random() < 0.7:
                (x, y, w, h), cat = boxes[int(rng.integers(len(boxes)))]
                j = float(rng.choice([0.03, 0.1, 0.3]))
                b = [x + float(rng.normal(0, j * w)), y + float(rng.normal(0, j * h)), w * float(rng.uniform(0.8, 1.2)),
                     h * float(rng.uniform(0.8, 1.2))]
                if rng.random() < 0.1:
                    cat = int(rng.integers(1, a.cats + 1))
            else:
                s = float(rng.choice([16.0, 64.0, 200.0]))
                w, h = float(rng.uniform(4, s)), float(rng.uniform(4, s))
                b = [float(rng.uniform(0, W - w)), float(rng.uniform(0, H - h)), w, h]
                cat = int(rng.integers(1, a.cats + 1))
            dets.append({"image_id": img_id, "category_id": cat, "bbox": [round(v, 2) for v in b],
                         "score": round(float(rng.random()), 5)})
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "ground_truth.json"), "w") as f:
        json.dump({"images": images, "annotations": anns, "categories": cats}, f)
    with open(os.path.join(a.out_dir, "results.json"), "w") as f:
        json.dump(dets, f)
    print(f"{len(images)} images, {len(anns)} boxes, {len(dets)} detections -> {a.out_dir}")


if __name__ == "__main__":
    main()
