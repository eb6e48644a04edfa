#!/usr/bin/python3
"""Golden values for em::metrics::coco_evaluate (COCO box mAP) from pycocotools itself.

Reference: pycocotools 2.0.11 (PyPI; ppwwyyxx/cocoapi), installed by you: Debian 12 has no python3-pycocotools and
the tree holds no copy of it. For example, in a venv that keeps Debian's numpy (tests/golden/coco_random.json was
made with numpy 1.24.2):
    python3 -m venv --system-site-packages /tmp/coco-ref && /tmp/coco-ref/bin/pip install pycocotools==2.0.11
or put a pycocotools 2.0.11 package folder on PYTHONPATH. Nothing here calls emkit.

Run from the repo root:
    /tmp/coco-ref/bin/python scripts/golden/coco_random.py          # writes tests/golden/coco_random.json
    /tmp/coco-ref/bin/python scripts/golden/coco_random.py --check-pair ../shared/data/coco-eval-pair
        (evaluates the shared pair and compares with the numbers pycocotools 2.0.11 printed for it)
    /tmp/coco-ref/bin/python scripts/golden/coco_random.py --eval GT.json RESULTS.json   # stats of any pair, as JSON

Each random case stresses one or more of: crowd regions, small/medium/large through an "area" field that is not
w*h, score ties (quantised scores), more than 100 detections on an image, categories without ground truth,
detections of unknown categories, images without annotations, annotation id 0 (pycocotools counts a match to it
as a false positive), degenerate boxes, float and integer coordinates.
"""
import contextlib
import copy
import json
import os
import sys

import numpy as np

REFERENCE_VERSION = "2.0.11"
try:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
except ImportError as e:
    sys.exit(f"coco_random.py: cannot import pycocotools ({e}). It is the reference and is not part of emkit: "
             f"install pycocotools {REFERENCE_VERSION}, e.g. `python3 -m venv --system-site-packages /tmp/coco-ref && "
             f"/tmp/coco-ref/bin/pip install pycocotools=={REFERENCE_VERSION}` and run this script with "
             f"/tmp/coco-ref/bin/python, or put the package on PYTHONPATH.")


def reference_version():
    try:
        from importlib.metadata import version
        return version("pycocotools")
    except Exception:  # a package folder on PYTHONPATH has no metadata
        return "unknown"


STAT_NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def evaluate(gt_dict, dets):
    """COCO(gt) -> loadRes(dets) -> COCOeval(bbox) evaluate/accumulate/summarize; prints go to stderr."""
    with contextlib.redirect_stdout(sys.stderr):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt_dict)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(dets))
        ev = COCOeval(coco_gt, coco_dt, iouType="bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"]  # [T, R, K, A, M]
    p = ev.params
    t50 = np.where(0.5 == p.iouThrs)[0]
    per_class = []
    for k, cat_id in enumerate(p.catIds):
        s = prec[:, :, k, 0, 2]  # area "all", maxDets 100
        ap = float(np.mean(s[s > -1])) if len(s[s > -1]) else -1.0
        s50 = prec[t50, :, k, 0, 2]
        ap50 = float(np.mean(s50[s50 > -1])) if len(s50[s50 > -1]) else -1.0
        per_class.append({"category_id": int(cat_id), "AP": ap, "AP50": ap50})
    return {
        "stats": {n: float(v) for n, v in zip(STAT_NAMES, ev.stats)},
        "per_class": per_class,
    }


def rnd_box(rng, w_img, h_img, size_scale):
    w = float(rng.uniform(2, size_scale))
    h = float(rng.uniform(2, size_scale))
    x = float(rng.uniform(0, max(1.0, w_img - w)))
    y = float(rng.uniform(0, max(1.0, h_img - h)))
    return [x, y, w, h]


def jitter(rng, box, amount):
    x, y, w, h = box
    return [x + float(rng.normal(0, amount * w)), y + float(rng.normal(0, amount * h)),
            max(0.5, w * float(rng.uniform(1 - amount, 1 + amount))),
            max(0.5, h * float(rng.uniform(1 - amount, 1 + amount)))]


def make_case(seed, n_images, n_cats, gt_per_image, det_per_image, *, crowd_p=0.0, area_not_wh=False,
              quantise_scores=False, first_ann_id=1, integer_coords=False, empty_cat=False, unknown_cat=False,
              degenerate=False, heavy_image=False, empty_images=0):
    rng = np.random.default_rng(seed)
    cat_ids = [c * 3 + (0 if first_ann_id == 0 else 1) for c in range(n_cats)]  # sparse ids
    cats = [{"id": cid, "name": f"class{cid}"} for cid in cat_ids]
    gt_cats = cat_ids[:-1] if empty_cat else cat_ids  # the last category then has no ground truth
    images, anns, dets = [], [], []
    ann_id = first_ann_id
    img_ids = list(rng.permutation(np.arange(1, 3 * (n_images + empty_images) + 1))[: n_images + empty_images])
    for ii, img_id in enumerate(img_ids):
        img_id = int(img_id)
        W, H = int(rng.integers(200, 800)), int(rng.integers(200, 800))
        images.append({"id": img_id, "file_name": f"{img_id}.jpg", "width": W, "height": H})
        if ii >= n_images:
            continue  # images without annotations (detections may still land there)
        n_gt = int(rng.integers(0, gt_per_image + 1))
        boxes = []
        for _ in range(n_gt):
            scale = float(rng.choice([20, 60, 200]))  # spreads boxes over small / medium / large
            b = rnd_box(rng, W, H, scale)
            if integer_coords:
                b = [float(round(v)) for v in b]
                b[2], b[3] = max(b[2], 1.0), max(b[3], 1.0)
            cat = int(rng.choice(gt_cats))
            crowd = int(rng.random() < crowd_p)
            if crowd:
                b = [b[0], b[1], b[2] * 2.5, b[3] * 2.5]
            area = b[2] * b[3]
            if area_not_wh:
                area = area * float(rng.uniform(0.3, 1.5))  # like polygon areas
            anns.append({"id": ann_id, "image_id": img_id, "category_id": cat, "bbox": b, "area": area,
                         "iscrowd": crowd, "segmentation": []})
            ann_id += 1
            boxes.append((b, cat))
        n_det = int(rng.integers(0, det_per_image + 1))
        if heavy_image and ii == 0:
            n_det = 150  # past maxDets=100 on one image
        for j in range(n_det):
            if boxes and rng.random() < 0.7:
                b, cat = boxes[int(rng.integers(len(boxes)))]
                db = jitter(rng, b, float(rng.choice([0.02, 0.1, 0.25])))
                if rng.random() < 0.15:
                    cat = int(rng.choice(cat_ids))  # wrong class
            else:
                db = rnd_box(rng, W, H, float(rng.choice([20, 60, 200])))
                cat = int(rng.choice(cat_ids))
            if integer_coords:
                db = [float(round(v)) for v in db]
            if degenerate and rng.random() < 0.05:
                db[2] = 0.0
            score = float(rng.random())
            if quantise_scores:
                score = round(score * 8) / 8  # many ties: stable-sort order matters
            d = {"image_id": img_id, "category_id": cat, "bbox": db, "score": score}
            if rng.random() < 0.3:
                d["area"] = 12345.0  # extra fields are ignored (loadRes recomputes area)
                d["category_name"] = "x"
            dets.append(d)
    # detections landing on the annotation-less images
    for img in images[n_images:]:
        for _ in range(3):
            dets.append({"image_id": img["id"], "category_id": int(rng.choice(cat_ids)),
                         "bbox": rnd_box(rng, img["width"], img["height"], 60), "score": float(rng.random())})
    if unknown_cat and images:
        dets.append({"image_id": images[0]["id"], "category_id": 9999, "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.99})
    # shuffle detections so results order differs from image order
    order = rng.permutation(len(dets))
    dets = [dets[i] for i in order]
    # shuffle the images' order in the file too (pycocotools sorts image ids)
    images = [images[i] for i in rng.permutation(len(images))]
    return {"images": images, "annotations": anns, "categories": cats}, dets


CASES = [
    ("basic", dict(seed=1, n_images=12, n_cats=3, gt_per_image=6, det_per_image=12)),
    ("crowd_and_area_field", dict(seed=2, n_images=15, n_cats=2, gt_per_image=8, det_per_image=15, crowd_p=0.2,
                                  area_not_wh=True)),
    ("score_ties", dict(seed=3, n_images=10, n_cats=2, gt_per_image=6, det_per_image=20, quantise_scores=True,
                        crowd_p=0.1)),
    ("more_than_100_per_image", dict(seed=4, n_images=6, n_cats=2, gt_per_image=30, det_per_image=40,
                                     heavy_image=True)),
    ("empty_category_unknown_category_empty_images",
     dict(seed=5, n_images=8, n_cats=4, gt_per_image=5, det_per_image=10, empty_cat=True, unknown_cat=True,
          empty_images=3)),
    ("annotation_id_zero", dict(seed=6, n_images=8, n_cats=2, gt_per_image=5, det_per_image=8, first_ann_id=0)),
    ("integer_coords_degenerate", dict(seed=7, n_images=10, n_cats=3, gt_per_image=6, det_per_image=12,
                                       integer_coords=True, degenerate=True, crowd_p=0.1)),
    ("single_class_dense", dict(seed=8, n_images=5, n_cats=1, gt_per_image=25, det_per_image=60, crowd_p=0.05,
                                area_not_wh=True, quantise_scores=True)),
]


def main(argv):
    if len(argv) >= 2 and argv[1] == "--eval":
        with open(argv[2]) as f:
            gt = json.load(f)
        with open(argv[3]) as f:
            dets = json.load(f)
        json.dump(evaluate(gt, dets), sys.stdout, indent=1)
        print()
        return 0
    if len(argv) >= 2 and argv[1] == "--check-pair":
        d = argv[2]
        with open(os.path.join(d, "ground_truth.json")) as f:
            gt = json.load(f)
        with open(os.path.join(d, "detections.json")) as f:
            dets = json.load(f)
        with open(os.path.join(d, "expected_pycocotools.json")) as f:
            expected = json.load(f)["stats"]
        got = evaluate(gt, dets)["stats"]
        worst = max(abs(got[n] - expected[n]) for n in STAT_NAMES)
        print(f"pycocotools {reference_version()} vs pycocotools 2.0.11's printed numbers on {d}: max |diff| = {worst:.3g}")
        return 0 if worst <= 1e-12 else 1

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    version = reference_version()
    if version != REFERENCE_VERSION:
        print(f"warning: pycocotools {version} (no package metadata when it comes from PYTHONPATH); the golden file's "
              f"reference is pycocotools {REFERENCE_VERSION}", file=sys.stderr)
    out = {"reference": f"pycocotools {version}, COCOeval(iouType='bbox') default params",
           "numpy": np.__version__,
           # the exact doubles of Params.setDetParams (np.linspace), for numpy_linspace's test
           "iou_thresholds": np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True).tolist(),
           "recall_thresholds": np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True).tolist(),
           "cases": []}
    for name, kw in CASES:
        gt, dets = make_case(**kw)
        ref = evaluate(gt, dets)
        out["cases"].append({"name": name, "ground_truth": gt, "detections": dets, **ref})
        print(f"{name}: {len(gt['annotations'])} gt, {len(dets)} dets, AP={ref['stats']['AP']:.6f}", file=sys.stderr)
    path = os.path.join(root, "tests", "golden", "coco_random.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
