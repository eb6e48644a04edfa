#!/usr/bin/python3
"""Golden values of the training loss of HF transformers' SegformerForSemanticSegmentation, for
tests/unit/models/test_segformer.cpp (em::models::segformer_loss).

HF's forward (modeling_segformer.py at huggingface/transformers 01ae98ae2414210efd0d9ac1ffe78ff21588f1f7) computes,
when labels are given:
    upsampled_logits = nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    num_labels > 1:  CrossEntropyLoss(ignore_index=config.semantic_loss_ignore_index)(upsampled_logits, labels)
    num_labels == 1: valid_mask = ((labels >= 0) & (labels != ignore_index)).float()
                     loss = (BCEWithLogitsLoss(reduction="none")(upsampled_logits.squeeze(1), labels.float())
                             * valid_mask).mean()
Those lines are run here with torch on inputs that the C++ test rebuilds with the same formulas:
    logits[n, c, y, x] = sin(0.37 n + 1.3 c + 0.11 y + 0.07 x) * 3   (float64 formula, then float32)
    labels[n, y, x]    = (5 n + 3 y + x) % (L + 2), where the values L and L+1 become 255 (ignored)
logits are [2, L, 5, 7] and labels [2, 17, 23] (a non-integer upsampling factor).

Run: /usr/bin/python3 scripts/golden/segformer_loss.py   (writes tests/golden/segformer_loss.json)
"""
import json
import os

import torch
from torch import nn
from torch.nn import BCEWithLogitsLoss, CrossEntropyLoss


def inputs(num_labels):
    n, c, y, x = torch.meshgrid(torch.arange(2.0, dtype=torch.float64), torch.arange(float(num_labels), dtype=torch.float64),
                                torch.arange(5.0, dtype=torch.float64), torch.arange(7.0, dtype=torch.float64),
                                indexing="ij")
    logits = (torch.sin(0.37 * n + 1.3 * c + 0.11 * y + 0.07 * x) * 3).to(torch.float32)
    n, y, x = torch.meshgrid(torch.arange(2), torch.arange(17), torch.arange(23), indexing="ij")
    labels = (5 * n + 3 * y + x) % (num_labels + 2)
    labels[labels >= num_labels] = 255
    return logits, labels


def hf_loss(logits, labels, num_labels, ignore_index=255):
    upsampled_logits = nn.functional.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False)
    if num_labels > 1:
        return CrossEntropyLoss(ignore_index=ignore_index)(upsampled_logits, labels)
    valid_mask = ((labels >= 0) & (labels != ignore_index)).float()
    loss = BCEWithLogitsLoss(reduction="none")(upsampled_logits.squeeze(1), labels.float())
    return (loss * valid_mask).mean()


def main() -> None:
    out = {}
    for num_labels in (4, 1):
        logits, labels = inputs(num_labels)
        out[f"loss_{num_labels}_labels"] = hf_loss(logits, labels, num_labels).item()
        # A spot value of the upsampled logits, to pin the resampling itself: [n=1, c=0, y=9, x=13].
        up = nn.functional.interpolate(logits, size=(17, 23), mode="bilinear", align_corners=False)
        out[f"upsampled_{num_labels}_labels_1_0_9_13"] = up[1, 0, 9, 13].item()
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "golden", "segformer_loss.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(path, out)


if __name__ == "__main__":
    main()
