#!/usr/bin/python3
"""Golden values for em::models::label_map_at: HF's SegformerImageProcessor.post_process_semantic_segmentation with
target_sizes (transformers/models/segformer/image_processing_segformer.py), whose per-image lines are

    resized_logits = torch.nn.functional.interpolate(logits[idx].unsqueeze(dim=0), size=target_sizes[idx],
                                                     mode="bilinear", align_corners=False)
    semantic_map = resized_logits[0].argmax(dim=0)

run here with torch on seeded random logits (stored in the golden file, so the C++ test needs no shared RNG).
Also the map torch's nearest upsampling of the argmax would give, to show the test tells the two apart.

Run: /usr/bin/python3 scripts/golden/segformer_postprocess.py  -> tests/golden/segformer_postprocess.json
"""
import json
import os

import torch

torch.manual_seed(11)
cases = []
for labels, (h, w), (th, tw) in [(4, (5, 7), (13, 17)), (3, (6, 4), (6, 4)), (5, (4, 4), (31, 9))]:
    logits = torch.randn(labels, h, w)
    resized = torch.nn.functional.interpolate(logits.unsqueeze(0), size=(th, tw), mode="bilinear", align_corners=False)
    semantic_map = resized[0].argmax(dim=0)
    nearest = torch.nn.functional.interpolate(logits.argmax(0)[None, None].float(), size=(th, tw), mode="nearest")[0, 0]
    cases.append({"logits": logits.tolist(), "target_size": [th, tw], "label_map": semantic_map.tolist(),
                  "differs_from_nearest": bool((nearest.long() != semantic_map).any())})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden", "segformer_postprocess.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print("wrote", os.path.normpath(out))
