#!/usr/bin/python3
"""Golden values for emkit's DETR matcher, GIoU, loss, post-processing and assignment solver
(tests/unit/models/test_detr_loss.cpp, test_hungarian.cpp), from reference code written by others.

References, transcribed below formula for formula (no emkit code is involved):
  - facebookresearch/detr at 29901c51d7fe8712168b8d0d64351170bc0f83e0 (the commit the shared detr-tiny fixture used):
      util/box_ops.py          box_cxcywh_to_xyxy, box_iou, generalized_box_iou
      models/matcher.py        HungarianMatcher.forward (with scipy.optimize.linear_sum_assignment)
      models/detr.py           SetCriterion: loss_labels, loss_cardinality, loss_boxes, forward (aux_outputs),
                               with losses ["labels", "boxes", "cardinality"] as HF's ForObjectDetectionLoss uses them
  - huggingface/transformers: the total loss = sum(loss_dict[k] * weight_dict[k]) with weight_dict
      {"loss_ce": 1, "loss_bbox": bbox_loss_coefficient, "loss_giou": giou_loss_coefficient} + the same per
      auxiliary output (loss/loss_for_object_detection.py), and DetrImageProcessor.post_process_object_detection
      (models/detr/image_processing_detr.py).
  - scipy.optimize.linear_sum_assignment (Debian python3-scipy 1.10.1) for the assignment goldens.
The transcription was checked against the original repository's own modules (SetCriterion, HungarianMatcher) on the
same tensors: identical losses and indices (see --check-original).

Run from the repo root:
    /usr/bin/python3 scripts/golden/detr_reference.py            # writes tests/golden/detr_reference.json
    /usr/bin/python3 scripts/golden/detr_reference.py --check-original /path/to/detr/checkout
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment


# ---------------------------------------------------------------- util/box_ops.py

def box_cxcywh_to_xyxy(x):
    x_c, y_c, w, h = x.unbind(-1)
    b = [(x_c - 0.5 * w), (y_c - 0.5 * h), (x_c + 0.5 * w), (y_c + 0.5 * h)]
    return torch.stack(b, dim=-1)


def box_area(boxes):  # torchvision.ops.boxes.box_area
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1, boxes2):
    area1 = box_area(boxes1)
    area2 = box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    union = area1[:, None] + area2 - inter
    iou = inter / union
    return iou, union


def generalized_box_iou(boxes1, boxes2):
    assert (boxes1[:, 2:] >= boxes1[:, :2]).all()
    assert (boxes2[:, 2:] >= boxes2[:, :2]).all()
    iou, union = box_iou(boxes1, boxes2)
    lt = torch.min(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.max(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[:, :, 0] * wh[:, :, 1]
    return iou - (area - union) / area


# ---------------------------------------------------------------- models/matcher.py

@torch.no_grad()
def hungarian_matcher(outputs, targets, cost_class=1, cost_bbox=5, cost_giou=2):
    bs, num_queries = outputs["pred_logits"].shape[:2]
    out_prob = outputs["pred_logits"].flatten(0, 1).softmax(-1)
    out_bbox = outputs["pred_boxes"].flatten(0, 1)
    tgt_ids = torch.cat([v["labels"] for v in targets])
    tgt_bbox = torch.cat([v["boxes"] for v in targets])
    c_class = -out_prob[:, tgt_ids]
    c_bbox = torch.cdist(out_bbox, tgt_bbox, p=1)
    c_giou = -generalized_box_iou(box_cxcywh_to_xyxy(out_bbox), box_cxcywh_to_xyxy(tgt_bbox))
    C = cost_bbox * c_bbox + cost_class * c_class + cost_giou * c_giou
    C = C.view(bs, num_queries, -1).cpu()
    sizes = [len(v["boxes"]) for v in targets]
    indices = [linear_sum_assignment(c[i]) for i, c in enumerate(C.split(sizes, -1))]
    return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in indices]


# ---------------------------------------------------------------- models/detr.py SetCriterion

def src_permutation_idx(indices):
    batch_idx = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
    src_idx = torch.cat([src for (src, _) in indices])
    return batch_idx, src_idx


def loss_labels(outputs, targets, indices, num_classes, empty_weight):
    src_logits = outputs["pred_logits"]
    idx = src_permutation_idx(indices)
    target_classes_o = torch.cat([t["labels"][J] for t, (_, J) in zip(targets, indices)])
    target_classes = torch.full(src_logits.shape[:2], num_classes, dtype=torch.int64)
    target_classes[idx] = target_classes_o
    return {"loss_ce": F.cross_entropy(src_logits.transpose(1, 2), target_classes, empty_weight)}


@torch.no_grad()
def loss_cardinality(outputs, targets):
    pred_logits = outputs["pred_logits"]
    tgt_lengths = torch.as_tensor([len(v["labels"]) for v in targets])
    card_pred = (pred_logits.argmax(-1) != pred_logits.shape[-1] - 1).sum(1)
    return {"cardinality_error": F.l1_loss(card_pred.float(), tgt_lengths.float())}


def loss_boxes(outputs, targets, indices, num_boxes):
    idx = src_permutation_idx(indices)
    src_boxes = outputs["pred_boxes"][idx]
    target_boxes = torch.cat([t["boxes"][i] for t, (_, i) in zip(targets, indices)], dim=0)
    loss_bbox = F.l1_loss(src_boxes, target_boxes, reduction="none")
    loss_giou = 1 - torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(target_boxes)))
    return {"loss_bbox": loss_bbox.sum() / num_boxes, "loss_giou": loss_giou.sum() / num_boxes}


def set_criterion(outputs, targets, num_classes, eos_coef, costs):
    empty_weight = torch.ones(num_classes + 1)
    empty_weight[-1] = eos_coef
    indices = hungarian_matcher(outputs, targets, *costs)
    num_boxes = sum(len(t["labels"]) for t in targets)
    num_boxes = torch.clamp(torch.as_tensor([num_boxes], dtype=torch.float), min=1).item()
    losses = {}
    losses.update(loss_labels(outputs, targets, indices, num_classes, empty_weight))
    losses.update(loss_boxes(outputs, targets, indices, num_boxes))
    losses.update(loss_cardinality(outputs, targets))
    for i, aux in enumerate(outputs.get("aux_outputs", [])):
        aux_indices = hungarian_matcher(aux, targets, *costs)
        l_dict = {}
        l_dict.update(loss_labels(aux, targets, aux_indices, num_classes, empty_weight))
        l_dict.update(loss_boxes(aux, targets, aux_indices, num_boxes))
        l_dict.update(loss_cardinality(aux, targets))
        losses.update({k + f"_{i}": v for k, v in l_dict.items()})
    return losses, indices


def hf_total(losses, bbox_coef, giou_coef, num_aux):
    weight_dict = {"loss_ce": 1, "loss_bbox": bbox_coef}
    weight_dict["loss_giou"] = giou_coef
    aux_weight_dict = {}
    for i in range(num_aux):
        aux_weight_dict.update({k + f"_{i}": v for k, v in weight_dict.items()})
    weight_dict.update(aux_weight_dict)
    return sum(losses[k] * weight_dict[k] for k in losses.keys() if k in weight_dict)


# ---------------------------------------------------------------- HF post_process_object_detection

def post_process_object_detection(logits, pred_boxes, threshold, target_sizes):
    prob = F.softmax(logits, -1)
    scores, labels = prob[..., :-1].max(-1)
    boxes = box_cxcywh_to_xyxy(pred_boxes)
    img_h = torch.Tensor([i[0] for i in target_sizes])
    img_w = torch.Tensor([i[1] for i in target_sizes])
    scale_fct = torch.stack([img_w, img_h, img_w, img_h], dim=1)
    boxes = boxes * scale_fct[:, None, :]
    results = []
    for s, l, b in zip(scores, labels, boxes):
        results.append({"scores": s[s > threshold], "labels": l[s > threshold], "boxes": b[s > threshold]})
    return results


# ---------------------------------------------------------------- cases

def rand_targets(g, counts, num_classes):
    targets = []
    for m in counts:
        cxcy = torch.rand(m, 2, generator=g) * 0.6 + 0.2
        wh = torch.rand(m, 2, generator=g) * 0.35 + 0.05
        targets.append({"labels": torch.randint(0, num_classes, (m,), generator=g), "boxes": torch.cat([cxcy, wh], 1)})
    return targets


def rand_outputs(g, n, q, num_classes):
    return {"pred_logits": torch.randn(n, q, num_classes + 1, generator=g) * 2,
            "pred_boxes": torch.sigmoid(torch.randn(n, q, 4, generator=g))}


def loss_cases():
    g = torch.Generator().manual_seed(20240601)
    specs = [
        # name, images' target counts, queries, classes, aux layers, eos, costs (class, bbox, giou), coefficients
        ("two images, three decoder layers", [2, 3], 6, 3, 2, 0.1, (1, 5, 2), (5, 2)),
        ("an image without boxes and one with as many boxes as queries", [0, 4], 4, 2, 0, 0.1, (1, 5, 2), (5, 2)),
        ("more boxes than queries", [5], 3, 4, 1, 0.1, (1, 5, 2), (5, 2)),
        ("other costs, weights and eos", [1, 2, 3], 8, 5, 1, 0.25, (2, 1, 3), (1, 4)),
        ("no boxes in the whole batch", [0, 0], 5, 3, 1, 0.1, (1, 5, 2), (5, 2)),
    ]
    cases = []
    for name, counts, q, c, aux, eos, costs, coefs in specs:
        outputs = rand_outputs(g, len(counts), q, c)
        outputs["aux_outputs"] = [
            {"pred_logits": o["pred_logits"], "pred_boxes": o["pred_boxes"]}
            for o in (rand_outputs(g, len(counts), q, c) for _ in range(aux))]
        targets = rand_targets(g, counts, c)
        losses, indices = set_criterion(outputs, targets, c, eos, costs)
        total = hf_total(losses, coefs[0], coefs[1], aux)
        cases.append({
            "name": name,
            "num_labels": c,
            "eos_coefficient": eos,
            "costs": {"class_cost": costs[0], "bbox_cost": costs[1], "giou_cost": costs[2]},
            "bbox_loss_coefficient": coefs[0],
            "giou_loss_coefficient": coefs[1],
            "logits": outputs["pred_logits"].tolist(),
            "pred_boxes": outputs["pred_boxes"].tolist(),
            "aux_outputs": [{"logits": a["pred_logits"].tolist(), "pred_boxes": a["pred_boxes"].tolist()}
                            for a in outputs["aux_outputs"]],
            "targets": [{"labels": t["labels"].tolist(), "boxes": t["boxes"].tolist()} for t in targets],
            "indices": [{"queries": i.tolist(), "targets": j.tolist()} for i, j in indices],
            "losses": {k: float(v) for k, v in losses.items()},
            "total": float(total),
        })
    return cases


def giou_cases():
    g = torch.Generator().manual_seed(7)
    xy = torch.rand(5, 2, generator=g) * 10
    a = torch.cat([xy, xy + torch.rand(5, 2, generator=g) * 6 + 0.1], 1)
    xy = torch.rand(4, 2, generator=g) * 10
    b = torch.cat([xy, xy + torch.rand(4, 2, generator=g) * 6 + 0.1], 1)
    return {"boxes1": a.tolist(), "boxes2": b.tolist(), "giou": generalized_box_iou(a, b).tolist(),
            "iou": box_iou(a, b)[0].tolist()}


def post_process_case():
    g = torch.Generator().manual_seed(11)
    logits = torch.randn(2, 7, 4, generator=g) * 1.5
    boxes = torch.sigmoid(torch.randn(2, 7, 4, generator=g))
    sizes = [(480, 640), (100, 37)]
    res = post_process_object_detection(logits, boxes, 0.5, sizes)
    return {"logits": logits.tolist(), "pred_boxes": boxes.tolist(), "threshold": 0.5,
            "target_sizes": [list(s) for s in sizes],
            "results": [{"scores": r["scores"].tolist(), "labels": r["labels"].tolist(), "boxes": r["boxes"].tolist()}
                        for r in res]}


def assignment_cases():
    rng = np.random.default_rng(31)
    cases = []
    for rows, cols, kind in [(1, 1, "float"), (1, 5, "float"), (5, 1, "float"), (6, 6, "float"), (4, 9, "float"),
                             (9, 4, "float"), (30, 45, "float"), (45, 30, "float"), (60, 60, "float"),
                             (100, 12, "float"), (6, 6, "ties"), (5, 8, "ties"), (8, 5, "ties"), (25, 25, "ties"),
                             (20, 33, "ties"), (33, 20, "ties"), (7, 7, "constant"), (4, 6, "constant"),
                             (12, 12, "negative")]:
        if kind == "float":
            c = np.round(rng.random((rows, cols)) * 10, 4)
        elif kind == "ties":
            c = rng.integers(0, 4, (rows, cols)).astype(float)
        elif kind == "constant":
            c = np.full((rows, cols), 2.5)
        else:
            c = np.round(rng.normal(size=(rows, cols)) * 100, 3)
        r, k = linear_sum_assignment(c)
        cases.append({"kind": kind, "rows": rows, "cols": cols, "cost": c.tolist(), "row_ind": r.tolist(),
                      "col_ind": k.tolist(), "optimum": float(c[r, k].sum())})
    return cases


def check_original(checkout):
    """Runs the original repository's SetCriterion/HungarianMatcher on the loss cases and compares with ours."""
    sys.path.insert(0, checkout)
    from models.detr import SetCriterion  # noqa: E402
    from models.matcher import HungarianMatcher  # noqa: E402
    worst = 0.0
    for case in loss_cases():
        cc = case["costs"]
        matcher = HungarianMatcher(cc["class_cost"], cc["bbox_cost"], cc["giou_cost"])
        crit = SetCriterion(case["num_labels"], matcher, {}, case["eos_coefficient"],
                            ["labels", "boxes", "cardinality"])
        outputs = {"pred_logits": torch.tensor(case["logits"]), "pred_boxes": torch.tensor(case["pred_boxes"])}
        if case["aux_outputs"]:
            outputs["aux_outputs"] = [{"pred_logits": torch.tensor(a["logits"]),
                                       "pred_boxes": torch.tensor(a["pred_boxes"])} for a in case["aux_outputs"]]
        targets = [{"labels": torch.tensor(t["labels"], dtype=torch.int64),
                    "boxes": torch.tensor(t["boxes"]).reshape(-1, 4)} for t in case["targets"]]
        losses = crit(outputs, targets)
        for k, v in case["losses"].items():
            worst = max(worst, abs(float(losses[k]) - v))
        assert set(losses) - {k for k in losses if k.startswith("class_error")} == set(case["losses"]), case["name"]
        print(f"{case['name']}: ok")
    print(f"max |original - transcription| = {worst}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check-original":
        check_original(sys.argv[2])
        return
    out = {
        "source": "scripts/golden/detr_reference.py (facebookresearch/detr 29901c5 formulas, HF post-processing, "
                  "scipy 1.10.1 linear_sum_assignment)",
        "loss_cases": loss_cases(),
        "giou": giou_cases(),
        "post_process": post_process_case(),
        "assignment_cases": assignment_cases(),
    }
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "detr_reference.json")
    with open(path, "w") as f:
        json.dump(out, f)
        f.write("\n")
    print(f"{path}: {len(out['loss_cases'])} loss cases, {len(out['assignment_cases'])} assignment cases")


if __name__ == "__main__":
    main()
