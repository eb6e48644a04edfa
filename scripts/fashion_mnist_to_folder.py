#!/usr/bin/env python3
"""Fashion-MNIST (IDX files) -> the classification layout of docs/datasets.md, as PNG files.

    python3 scripts/fashion_mnist_to_folder.py OUT [--train 6000] [--validation 1000] [--test 0]

Writes OUT/train/{label}/NNNNN.png, OUT/validation/{label}/NNNNN.png (and OUT/test/... with --test N), where
NNNNN is the image's index in its IDX file, so every PNG can be traced back. Labels are named by class
(T-shirt_top, Trouser, ..., Ankle_boot). Selection is balanced and deterministic: each split takes the first
N/10 images of every class in file order (the first N % 10 classes take one more). train comes from the
official training file (60000 images); validation, then test, from the official test file (10000), without overlap.

Needs only the Python standard library (zlib + struct write the PNGs): runs with any plain python3.
Source: Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist/*.gz), or --source DIR.
"""
import argparse
import gzip
import os
import struct
import sys
import zlib

CLASSES = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
DEFAULT_SOURCE = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    """Returns (dims, bytes) of an IDX file of unsigned bytes (magic 0x0000080N)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an IDX file of unsigned bytes (magic {data[:4].hex()})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    payload = data[4 + 4 * ndim:]
    expected = 1
    for d in dims:
        expected *= d
    if len(payload) != expected:
        sys.exit(f"{path}: {len(payload)} bytes of data, the header says {expected}")
    return dims, payload


def png_gray(width, height, pixels):
    """An 8-bit grayscale PNG (filter 0 on every row), deterministic bytes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + pixels[y * width:(y + 1) * width] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def balanced_indices(labels, count, start_after=None):
    """First count/10 indices of each class in file order (remainder to the first classes), skipping `start_after`."""
    quota = [count // 10 + (1 if c < count % 10 else 0) for c in range(10)]
    taken = []
    skip = start_after or set()
    for i, label in enumerate(labels):
        if i in skip:
            continue
        if quota[label] > 0:
            quota[label] -= 1
            taken.append(i)
            if len(taken) == count:
                break
    if len(taken) < count:
        sys.exit(f"asked for {count} images but only {len(taken)} are available with a balanced selection")
    return taken


def write_split(out, split, indices, dims, images, labels):
    _, height, width = dims
    size = height * width
    for c in CLASSES:
        os.makedirs(os.path.join(out, split, c), exist_ok=True)
    for i in indices:
        path = os.path.join(out, split, CLASSES[labels[i]], f"{i:05d}.png")
        with open(path, "wb") as f:
            f.write(png_gray(width, height, images[i * size:(i + 1) * size]))
    print(f"{os.path.join(out, split)}: {len(indices)} images", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output dataset folder (must not hold train/ or validation/ yet)")
    parser.add_argument("--train", type=int, default=6000, help="train images (balanced, max 60000; default 6000)")
    parser.add_argument("--validation", type=int, default=1000,
                        help="validation images from the official test file (balanced; default 1000)")
    parser.add_argument("--test", type=int, default=0,
                        help="test images from the official test file after validation's (default 0: no test/)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help=f"folder of the IDX .gz files ({DEFAULT_SOURCE})")
    args = parser.parse_args()
    for name in ("train", "validation", "test"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0, got {getattr(args, name)}")
    if args.train < 1 or args.validation < 1:
        parser.error("--train and --validation must be >= 1")
    if args.validation + args.test > 10000:
        parser.error(f"--validation + --test must be <= 10000 (the official test file), got {args.validation + args.test}")
    for split in ("train", "validation", "test"):
        if os.path.exists(os.path.join(args.out, split)):
            sys.exit(f"{os.path.join(args.out, split)}: already exists; choose a new OUT folder (nothing was written)")

    def load(prefix):
        dims, images = read_idx(os.path.join(args.source, f"{prefix}-images-idx3-ubyte.gz"))
        (n,), labels = read_idx(os.path.join(args.source, f"{prefix}-labels-idx1-ubyte.gz"))
        if n != dims[0]:
            sys.exit(f"{args.source}: {prefix} has {dims[0]} images but {n} labels")
        return dims, images, labels

    for prefix in ("train", "t10k"):
        if not os.path.exists(os.path.join(args.source, f"{prefix}-images-idx3-ubyte.gz")):
            sys.exit(f"{args.source}: no {prefix}-images-idx3-ubyte.gz (apt-get install dataset-fashion-mnist, or --source)")
    dims, images, labels = load("train")
    write_split(args.out, "train", balanced_indices(labels, args.train), dims, images, labels)
    dims, images, labels = load("t10k")
    validation = balanced_indices(labels, args.validation)
    write_split(args.out, "validation", validation, dims, images, labels)
    if args.test:
        write_split(args.out, "test", balanced_indices(labels, args.test, set(validation)), dims, images, labels)


if __name__ == "__main__":
    main()
