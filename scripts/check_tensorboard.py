#!/usr/bin/python3
"""Loads a TensorBoard log folder with TensorBoard's own loaders and prints its scalars as JSON.

Two loaders, which must agree: plugin_event_accumulator (what `tensorboard --logdir` serves through its data ingester)
and the older event_accumulator.EventAccumulator. The result is what the TensorBoard UI shows for the folder: all event
files merged, points orphaned by a restart (SessionLog START) dropped.
Needs the `tensorboard` Python package: installed, or its source tree on PYTHONPATH (TensorBoard's *_pb2.py modules are
generated at build time: `protoc -I. --python_out=. $(find tensorboard -name '*.proto')` in a source checkout; it also
needs python3-protobuf, python3-absl and numpy from Debian). Exit 77 when tensorboard cannot be imported.

Usage: check_tensorboard.py LOGDIR   prints {"tag": [[step, value, wall_time], ...], ...} on stdout.
"""
import json
import sys

try:
    from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
    from tensorboard.util import tensor_util
except ImportError as e:
    print(f"check_tensorboard: tensorboard is not importable ({e})", file=sys.stderr)
    sys.exit(77)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    legacy = event_accumulator.EventAccumulator(argv[1], size_guidance={event_accumulator.SCALARS: 0})
    legacy.Reload()
    old = {tag: [[e.step, e.value, e.wall_time] for e in legacy.Scalars(tag)] for tag in legacy.Tags()["scalars"]}

    plugin = plugin_event_accumulator.EventAccumulator(argv[1], size_guidance={plugin_event_accumulator.TENSORS: 0})
    plugin.Reload()
    new = {}
    for tag in plugin.Tags()["tensors"]:
        if plugin.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        new[tag] = [[e.step, float(tensor_util.make_ndarray(e.tensor_proto)), e.wall_time] for e in plugin.Tensors(tag)]
    if new != old:
        print(f"check_tensorboard: the two loaders disagree:\nplugin {new}\nlegacy {old}", file=sys.stderr)
        return 1
    print(json.dumps(dict(sorted(new.items()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
