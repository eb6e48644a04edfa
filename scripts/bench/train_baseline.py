#!/usr/bin/python3
"""The Python baseline em-train is compared with: the same job in PyTorch (Debian python3-torch + torchvision).

torchvision resnet50 (random init, num_classes from the folders, or --init: a state_dict .pth to fine-tune from, the
file em-train takes as --init too) on an ImageFolder of the classification layout, per image: PIL decode + RGB,
Resize(input_size x input_size, bilinear), RandomHorizontalFlip, ToTensor, ImageNet Normalize; DataLoader with
shuffling and --workers worker processes; AdamW (weight_decay 0, as em-train's default; torch's default for-loop
implementation), linear decay to 0, gradient clipping at 1.0 (HF Trainer's default, as em-train), cross-entropy;
--bf16: the forward under torch.autocast("cpu", dtype=torch.bfloat16), the loss in fp32, as em-train --bf16.
--make_init PTH NUM_CLASSES writes seeded random resnet50 weights for --init on both sides and exits.
Prints one JSON line with images/s. Run with /usr/bin/python3 (the python3 first on PATH cannot see Debian's packages).
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
import torchvision
from torchvision import datasets, transforms


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data", help="dataset folder with train/{label}/*.png")
    p.add_argument("--input_size", type=int, default=28)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--learning_rate", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--channels_last", action="store_true")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--init", help="torchvision resnet50 state_dict (.pth) to start from")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for the forward")
    p.add_argument("--make_init", nargs=2, metavar=("PTH", "NUM_CLASSES"),
                   help="write seeded random resnet50 weights to PTH and exit (DATA is ignored)")
    a = p.parse_args()

    if a.make_init:
        torch.manual_seed(a.seed)
        torch.save(torchvision.models.resnet50(num_classes=int(a.make_init[1])).state_dict(), a.make_init[0])
        return 0

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    tf = transforms.Compose([
        transforms.Resize((a.input_size, a.input_size)),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    ds = datasets.ImageFolder(a.data + "/train", transform=tf)
    dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_size, shuffle=True, num_workers=a.workers,
                                     persistent_workers=a.workers > 0)
    model = torchvision.models.resnet50(num_classes=len(ds.classes))
    if a.init:
        model.load_state_dict(torch.load(a.init, map_location="cpu"))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=a.learning_rate, weight_decay=0.0)
    total = a.epochs * len(dl)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, (total - s) / total))
    model.train()
    t0 = time.perf_counter()
    images = 0
    for _ in range(a.epochs):
        for x, y in dl:
            if a.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            images += x.shape[0]
    dt = time.perf_counter() - t0
    print(json.dumps({"images": images, "bf16": a.bf16, "init": a.init, "steps": total, "seconds": dt,
                      "images_per_second": images / dt, "final_loss": float(loss)}))


if __name__ == "__main__":
    sys.exit(main())
