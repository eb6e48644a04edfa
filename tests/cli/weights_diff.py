#!/usr/bin/env python3
"""weights_diff.py A.safetensors B.safetensors: prints max |a - b| / max |a| over every float tensor of two
safetensors files (same names and shapes required), with the standard library only (struct + array): the figure
docs/distributed.md quotes for data-parallel runs. Exit 2 when names, shapes or dtypes differ."""
import array
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], body[start:end])
    return out


def main():
    a, b = read(sys.argv[1]), read(sys.argv[2])
    if a.keys() != b.keys():
        print("different tensor names", file=sys.stderr)
        return 2
    max_diff = max_abs = 0.0
    for name in sorted(a):
        (ta, sa, da), (tb, sb, db) = a[name], b[name]
        if ta != tb or sa != sb:
            print(f"{name}: {ta}{sa} vs {tb}{sb}", file=sys.stderr)
            return 2
        if ta != "F32":
            continue
        va, vb = array.array("f", da), array.array("f", db)
        for x, y in zip(va, vb):
            max_diff = max(max_diff, abs(x - y))
            max_abs = max(max_abs, abs(x))
    print(f"{max_diff / max_abs if max_abs else 0.0:.3e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
