"""The reference side of bench_models.sh: the same measurement as em-bench-models (random weights, one in-memory
random batch, eval + no_grad inference or a forward + backward training step of loss = mean(output^2), fp32 or bf16
CPU autocast, LibTorch threads set) with torchvision's resnet50 or Hugging Face transformers'
SegformerForSemanticSegmentation / DetrForObjectDetection. Prints one JSON line; when the reference package cannot be
imported, prints {"available": false, "reason": ...} and exits 3.

    python3 bench_models_reference.py --model resnet-50 --mode infer --batch 16 --size 224 --threads 2 [--bf16]
"""
import argparse
import json
import statistics
import sys
import time


def build(model, num_labels):
    if model == "resnet-50":
        import torchvision

        return torchvision.models.resnet50(num_classes=num_labels), lambda m, x: m(x)
    if model == "mit-b0":
        import transformers

        # SegformerConfig's defaults are nvidia/mit-b0's architecture.
        config = transformers.SegformerConfig(num_labels=num_labels)
        return transformers.SegformerForSemanticSegmentation(config), lambda m, x: m(pixel_values=x).logits
    if model == "detr-resnet-50":
        import transformers

        config = transformers.DetrConfig(num_labels=num_labels, use_pretrained_backbone=False)

        def forward(m, x):
            out = m(pixel_values=x)
            return out.logits.sum() + out.pred_boxes.sum()

        return transformers.DetrForObjectDetection(config), forward
    raise SystemExit(f"unknown --model {model}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--mode", choices=["infer", "train"], default="infer")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--num_labels", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--bf16", action="store_true")
    a = p.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    try:
        model, forward = build(a.model, a.num_labels)
    except ImportError as e:
        print(json.dumps({"available": False, "model": a.model, "reason": str(e)}))
        sys.exit(3)
    x = torch.randn(a.batch, 3, a.size, a.size)
    train = a.mode == "train"
    model.train(train)

    def step():
        if train:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                out = forward(model, x)
            out.float().square().mean().backward()
            for q in model.parameters():
                q.grad = None
        else:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                forward(model, x)

    for _ in range(a.warmup):
        step()
    ms, cpu_ms = [], []
    for _ in range(a.runs):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        cpu_ms.append((time.process_time() - c0) * 1000)
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"available": True, "model": a.model, "mode": a.mode, "batch": a.batch, "size": a.size,
                      "bf16": a.bf16, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "ms": {"median": statistics.median(ms), "min": min(ms), "max": max(ms)},
                      "cpu_ms": {"median": statistics.median(cpu_ms), "min": min(cpu_ms), "max": max(cpu_ms)}}))


if __name__ == "__main__":
    main()
