#!/usr/bin/python3
"""Golden values for em::metrics::SegmentationAccumulator (HF evaluate `mean_iou` semantics).

`evaluate` is not installed here (no network), so this file re-states, step for step with the same NumPy calls,
the algorithm of huggingface/evaluate metrics/mean_iou/mean_iou.py (functions intersect_and_union,
total_intersect_and_union and mean_iou; https://github.com/huggingface/evaluate/blob/main/metrics/mean_iou/mean_iou.py,
read at commit 210d21415aec94f41038eaee1d25eb829d5025ee). It is checked against the docstring example of that file
before anything is written. label_map is not reproduced (em-metrics does not offer it).

Run from anywhere: /usr/bin/python3 scripts/golden/segmentation_mean_iou.py  -> tests/golden/segmentation_mean_iou.json
With ../shared/data/camvid-mini present it also writes tests/golden/segmentation_camvid_shifted.json: the metrics of
the real CamVid validation maps scored against "predictions" that are the truth of the next image in the split
(validation.json order, wrapping around), as em-metrics sees them (PNG files read with PIL).
It also writes tests/golden/segmentation_docstring/: the docstring example as a segmentation dataset (data/) with
prediction PNGs (pred/) and evaluate's printed numbers (expected.json), for the em-metrics CLI test.
"""
import json
import os

import numpy as np


def intersect_and_union(pred_label, label, num_labels, ignore_index, reduce_labels=False):
    pred_label = np.array(pred_label)
    label = np.array(label)
    if reduce_labels:  # background 0 -> 255 (ignored), every other id shifts down by one
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
    mask = np.not_equal(label, ignore_index)
    pred_label = pred_label[mask]
    label = np.array(label)[mask]
    intersect = pred_label[pred_label == label]
    # num_labels bins over [0, num_labels - 1]: one bin per integer id; values outside the range are dropped.
    area_intersect = np.histogram(intersect, bins=num_labels, range=(0, num_labels - 1))[0]
    area_pred_label = np.histogram(pred_label, bins=num_labels, range=(0, num_labels - 1))[0]
    area_label = np.histogram(label, bins=num_labels, range=(0, num_labels - 1))[0]
    area_union = area_pred_label + area_label - area_intersect
    return area_intersect, area_union, area_pred_label, area_label


def total_intersect_and_union(results, gt_seg_maps, num_labels, ignore_index, reduce_labels=False):
    totals = [np.zeros((num_labels,), dtype=np.float64) for _ in range(4)]
    for result, gt in zip(results, gt_seg_maps):
        for total, area in zip(totals, intersect_and_union(result, gt, num_labels, ignore_index, reduce_labels)):
            total += area
    return totals


def mean_iou(results, gt_seg_maps, num_labels, ignore_index, reduce_labels=False):
    inter, union, _pred, label = total_intersect_and_union(results, gt_seg_maps, num_labels, ignore_index,
                                                           reduce_labels)
    with np.errstate(divide="ignore", invalid="ignore"):
        all_acc = inter.sum() / label.sum()
        iou = inter / union
        acc = inter / label
    with np.testing.suppress_warnings() as sup:  # nanmean of an all-NaN array warns and returns NaN
        sup.filter(RuntimeWarning)
        return {
            "mean_iou": np.nanmean(iou),
            "mean_accuracy": np.nanmean(acc),
            "overall_accuracy": all_acc,
            "per_category_iou": iou,
            "per_category_accuracy": acc,
        }


def docstring_example():
    predicted = [np.array([[1, 2], [3, 4], [5, 255]]), np.array([[2, 7], [9, 2], [3, 6]]),
                 np.array([[2, 2, 3], [8, 2, 4], [3, 255, 2]])]
    actual = [np.array([[0, 3], [5, 4], [6, 255]]), np.array([[1, 7], [9, 2], [3, 6]]),
              np.array([[1, 2, 2], [8, 2, 1], [3, 255, 1]])]
    return predicted, actual


def to_json_number(v):
    v = float(v)
    return None if np.isnan(v) else v


def case(name, preds, truths, num_labels, ignore_index=255, reduce_labels=False, dtype=np.int64):
    preds = [np.asarray(p, dtype=dtype) for p in preds]
    truths = [np.asarray(t, dtype=dtype) for t in truths]
    r = mean_iou(preds, truths, num_labels, ignore_index, reduce_labels)
    return {
        "name": name,
        "num_labels": num_labels,
        "ignore_index": ignore_index,
        "reduce_labels": reduce_labels,
        "dtype": np.dtype(dtype).name,
        "images": [{"shape": list(p.shape), "pred": p.ravel().tolist(), "truth": t.ravel().tolist()}
                   for p, t in zip(preds, truths)],
        "mean_iou": to_json_number(r["mean_iou"]),
        "mean_accuracy": to_json_number(r["mean_accuracy"]),
        "overall_accuracy": to_json_number(r["overall_accuracy"]),
        "per_category_iou": [to_json_number(v) for v in r["per_category_iou"]],
        "per_category_accuracy": [to_json_number(v) for v in r["per_category_accuracy"]],
    }


def write_docstring_dataset(folder):
    from PIL import Image

    preds, truths = docstring_example()
    entries = []
    for i, (p, t) in enumerate(zip(preds, truths), start=1):
        rel = f"annotations/{i}.png"
        entries.append({"image": f"images/{i}.png", "seg_map": rel})
        for base, arr in (("data/validation", t), ("pred", p)):
            path = os.path.join(folder, base, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Image.fromarray(arr.astype(np.uint8), mode="L").save(path)
    os.makedirs(os.path.join(folder, "data", "resources"), exist_ok=True)
    with open(os.path.join(folder, "data", "resources", "id2label.json"), "w") as f:
        json.dump({str(i): f"class{i}" for i in range(10)}, f, indent=1)
    with open(os.path.join(folder, "data", "validation", "validation.json"), "w") as f:
        json.dump(entries, f, indent=1)
    r = mean_iou([np.array(Image.open(os.path.join(folder, "pred", e["seg_map"]))) for e in entries],
                 [np.array(Image.open(os.path.join(folder, "data", "validation", e["seg_map"]))) for e in entries],
                 10, 255)
    with open(os.path.join(folder, "expected.json"), "w") as f:
        json.dump({k: to_json_number(r[k]) for k in ("mean_iou", "mean_accuracy", "overall_accuracy")}, f, indent=1)
        f.write("\n")


def main():
    # The reimplementation must reproduce evaluate's own docstring output first.
    p, t = docstring_example()
    r = mean_iou(p, t, 10, 255, False)
    assert r["mean_iou"] == 0.47750000000000004, r["mean_iou"]
    assert r["mean_accuracy"] == 0.5916666666666666, r["mean_accuracy"]
    assert r["overall_accuracy"] == 0.5263157894736842, r["overall_accuracy"]
    np.testing.assert_allclose(r["per_category_iou"], [0., 0., 0.375, 0.4, 0.5, 0., 0.5, 1., 1., 1.])
    np.testing.assert_allclose(r["per_category_accuracy"],
                               [0., 0., 0.75, 0.66666667, 1., 0., 0.5, 1., 1., 1.], atol=1e-8)

    rng = np.random.default_rng(7)
    cases = [case("evaluate_docstring_example", p, t, 10)]

    # Ignore pixels, a class absent from both sides (5), a class predicted but absent from the truth (4: IoU 0,
    # accuracy NaN), predicted 255 on labelled pixels and a truth value outside [0, num_labels) (7).
    preds, truths = [], []
    for shape in [(5, 7), (6, 4), (3, 9)]:
        tr = rng.choice([0, 1, 2, 3, 255], size=shape, p=[0.3, 0.25, 0.2, 0.1, 0.15])
        pr = np.where(rng.random(shape) < 0.55, tr, rng.choice([0, 1, 2, 3, 4, 255], size=shape))
        pr[tr == 255] = rng.choice([0, 1, 4], size=int((tr == 255).sum()))
        preds.append(pr)
        truths.append(tr)
    truths[2][0, 0] = 7
    preds[2][0, 0] = 1
    truths[2][0, 1] = 7
    preds[2][0, 1] = 7
    cases.append(case("ignore_and_absent_classes", preds, truths, 6))

    # Same kind of maps as uint8 PNG values with reduce_labels (0 = background -> ignored, ids shift down by one).
    preds, truths = [], []
    for shape in [(8, 8), (4, 10)]:
        tr = rng.choice([0, 1, 2, 3, 4, 255], size=shape)
        pr = np.where(rng.random(shape) < 0.5, np.clip(tr.astype(np.int64) - 1, 0, 255), rng.integers(0, 4, shape))
        preds.append(pr)
        truths.append(tr)
    cases.append(case("reduce_labels_uint8", preds, truths, 4, reduce_labels=True, dtype=np.uint8))

    # A different ignore_index that lies inside the label range.
    tr = rng.integers(0, 3, (6, 6))
    pr = np.where(rng.random((6, 6)) < 0.6, tr, rng.integers(0, 3, (6, 6)))
    cases.append(case("ignore_index_0", [pr], [tr], 3, ignore_index=0))

    # Many classes (ADE20K-sized): the means then sum more than 128 values (NumPy's pairwise summation recurses).
    preds, truths = [], []
    for _ in range(2):
        tr = rng.integers(0, 150, (24, 24))
        tr[rng.random((24, 24)) < 0.05] = 255
        pr = np.where(rng.random((24, 24)) < 0.4, tr, rng.integers(0, 150, (24, 24)))
        preds.append(pr)
        truths.append(tr)
    cases.append(case("ade_sized_150_labels", preds, truths, 150))

    cases.append(case("single_label", [[[0, 0], [0, 255]]], [[[0, 0], [255, 0]]], 1))
    cases.append(case("everything_ignored", [[[0, 1], [1, 0]]], [[[255, 255], [255, 255]]], 2))

    out = {
        "generator": "scripts/golden/segmentation_mean_iou.py",
        "reference": f"HF evaluate mean_iou algorithm, re-run in numpy {np.__version__}",
        "cases": cases,
    }
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(root, "tests", "golden", "segmentation_mean_iou.json"), "w") as f:
        json.dump(out, f)
        f.write("\n")

    write_docstring_dataset(os.path.join(root, "tests", "golden", "segmentation_docstring"))

    camvid = os.path.join(root, "..", "shared", "data", "camvid-mini")
    if os.path.isdir(camvid):
        from PIL import Image

        split = os.path.join(camvid, "validation")
        with open(os.path.join(split, "validation.json")) as f:
            entries = json.load(f)
        with open(os.path.join(camvid, "resources", "id2label.json")) as f:
            id2label = json.load(f)
        maps = [np.array(Image.open(os.path.join(split, e["seg_map"]))) for e in entries]
        preds = maps[1:] + maps[:1]
        r = mean_iou(preds, maps, len(id2label), 255)
        names = [id2label[str(i)] for i in range(len(id2label))]
        camvid_out = {
            "generator": "scripts/golden/segmentation_mean_iou.py",
            "what": "camvid-mini validation; prediction for entry i = seg_map of entry (i + 1) % n",
            "mean_iou": to_json_number(r["mean_iou"]),
            "mean_accuracy": to_json_number(r["mean_accuracy"]),
            "overall_accuracy": to_json_number(r["overall_accuracy"]),
            "per_category_iou": dict(zip(names, map(to_json_number, r["per_category_iou"]))),
            "per_category_accuracy": dict(zip(names, map(to_json_number, r["per_category_accuracy"]))),
        }
        with open(os.path.join(root, "tests", "golden", "segmentation_camvid_shifted.json"), "w") as f:
            json.dump(camvid_out, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
