#!/usr/bin/python3
"""Golden values for em::metrics::ClassificationAccumulator and em-metrics --algo classification.

Reference: scikit-learn (Debian python3-sklearn). Run with /usr/bin/python3 from the repo root:
    /usr/bin/python3 scripts/golden/classification_metrics.py
Writes tests/golden/classification_metrics.json (unit tests) and tests/golden/classification_cli/ (CLI test:
truth/prediction JSONL files of the "random" case and sklearn's numbers for them).

The macro numbers are sklearn's default call, precision_recall_fscore_support(y_true, y_pred, average="macro",
zero_division=0) on the label strings (no labels=): the mean runs over the labels present in y_true or y_pred.
The per-class numbers are the same function with average=None, labels=<the full label list>, so a class without any
sample gets zeros there. "macro_labels_given" records sklearn with labels=<full list>, for the docs' comparison.
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def case(name, labels, y_true, y_pred):
    p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    pc, rc, fc, sc = precision_recall_fscore_support(y_true, y_pred, average=None, labels=labels, zero_division=0)
    pl, rl, fl, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", labels=labels, zero_division=0)
    return {
        "name": name,
        "labels": labels,
        "y_true": list(y_true),
        "y_pred": list(y_pred),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "per_class": {
            "precision": [float(v) for v in pc],
            "recall": [float(v) for v in rc],
            "f1": [float(v) for v in fc],
            "support": [int(v) for v in sc],
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "macro_labels_given": {"precision": float(pl), "recall": float(rl), "f1": float(fl)},
    }


def main():
    rng = np.random.default_rng(20240521)
    labels = ["bird", "cat", "dog", "fish", "horse"]
    cases = []

    # Random: a noisy classifier, right about 60% of the time.
    n = 97
    t = rng.integers(0, len(labels), n)
    pr = np.where(rng.random(n) < 0.6, t, rng.integers(0, len(labels), n))
    random_true = [labels[i] for i in t]
    random_pred = [labels[i] for i in pr]
    cases.append(case("random", labels, random_true, random_pred))

    # A larger random case with many classes (pairwise summation of >8 per-class values).
    many = [f"c{i:02d}" for i in range(23)]
    n = 500
    t = rng.integers(0, len(many), n)
    pr = np.where(rng.random(n) < 0.5, t, rng.integers(0, len(many), n))
    cases.append(case("random_23_classes", many, [many[i] for i in t], [many[i] for i in pr]))

    # "fish" appears in the truth but is never predicted.
    yt = ["cat", "dog", "fish", "fish", "cat", "dog", "fish", "cat"]
    yp = ["cat", "dog", "cat", "dog", "cat", "cat", "dog", "cat"]
    cases.append(case("class_never_predicted", ["cat", "dog", "fish"], yt, yp))

    # "fish" is predicted but absent from the truth.
    yt = ["cat", "dog", "dog", "cat", "cat", "dog"]
    yp = ["cat", "fish", "dog", "fish", "cat", "dog"]
    cases.append(case("class_absent_from_truth", ["cat", "dog", "fish"], yt, yp))

    # "bird" is in the label list but has no sample on either side: left out of the macro mean.
    yt = ["cat", "dog", "dog", "cat", "fish", "fish", "dog"]
    yp = ["cat", "dog", "cat", "cat", "fish", "dog", "dog"]
    cases.append(case("class_absent_from_both", ["bird", "cat", "dog", "fish"], yt, yp))

    yt = ["cat", "dog", "fish", "dog", "cat"]
    cases.append(case("all_correct", ["cat", "dog", "fish"], yt, list(yt)))

    cases.append(case("single_class", ["cat"], ["cat"] * 4, ["cat"] * 4))

    # One label list with a single class in the data but a wrong prediction of another class.
    cases.append(case("single_sample_wrong", ["cat", "dog"], ["cat"], ["dog"]))

    out = {
        "generator": "scripts/golden/classification_metrics.py",
        "reference": f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
        "cases": cases,
    }
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    golden = os.path.join(root, "tests", "golden")
    with open(os.path.join(golden, "classification_metrics.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    # CLI vectors: the "random" case as em-eval-style files, images under validation/{label}/.
    cli = os.path.join(golden, "classification_cli")
    os.makedirs(cli, exist_ok=True)
    counters = {}
    truth_lines, pred_lines = [], []
    for i, (yt_i, yp_i) in enumerate(zip(random_true, random_pred)):
        counters[yt_i] = counters.get(yt_i, 0) + 1
        image = f"validation/{yt_i}/{counters[yt_i]:03d}.png"
        truth_lines.append(json.dumps({"image": image, "label": yt_i}))
        score = round(float(rng.uniform(0.2, 1.0)), 4)
        pred_lines.append(json.dumps({"image": image, "label": yp_i, "score": score, "label_id": labels.index(yp_i)}))
    order = rng.permutation(len(pred_lines))  # predictions need not follow the truth's order
    with open(os.path.join(cli, "truth.jsonl"), "w") as f:
        f.write("\n".join(truth_lines) + "\n")
    with open(os.path.join(cli, "pred.jsonl"), "w") as f:
        f.write("\n".join(pred_lines[i] for i in order) + "\n")
    c = cases[0]
    expected = {k: c[k] for k in ("accuracy", "precision", "recall", "f1")}
    with open(os.path.join(cli, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases", file=sys.stderr)


if __name__ == "__main__":
    main()
