#!/usr/bin/python3
"""Independent reader of TensorBoard event files (what em-train writes to OUT/runs/).

Verifies the TFRecord framing of every record (uint64 length, masked CRC-32C of the length, data, masked CRC-32C of
the data; mask = ((crc >> 15) | (crc << 17)) + 0xa282ead8) and decodes each tensorflow.Event with a protobuf wire-format
decoder written from the spec (event.proto: wall_time=1 double, step=2 int64, file_version=3 string, summary=5,
session_log=7, SessionLog.status=1 enum; summary.proto: Summary.value=1, Value.tag=1, Value.simple_value=2 float).
Shares no code with the C++ writer.
When python3-protobuf is installed, each record is decoded a second time by the real protobuf runtime (the message types
built from descriptors of the same .proto fields) and the two decodings must agree.

Usage: read_tfevents.py FILE_OR_FOLDER...   prints one JSON object per event (JSONL) on stdout; exit 1 on any error.
"""
import json
import os
import struct
import sys


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_varint(buf: bytes, pos: int):
    value, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift >= 70:
            raise ValueError("varint too long")


def parse_fields(buf: bytes):
    """Yields (field number, wire type, value) of one message: int for varints, bytes otherwise."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value, pos = buf[pos:pos + length], pos + length
        else:
            raise ValueError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ValueError("field runs past the end of its message")
        yield number, wire, value


def decode_event(data: bytes) -> dict:
    event = {"wall_time": 0.0, "step": 0}
    for number, wire, value in parse_fields(data):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            event["file_version"] = value.decode("utf-8")
        elif number == 5 and wire == 2:
            values = []
            for vnum, vwire, vbytes in parse_fields(value):
                if vnum != 1 or vwire != 2:
                    raise ValueError(f"Summary field {vnum} is not a Value")
                item = {}
                for fnum, fwire, fval in parse_fields(vbytes):
                    if fnum == 1 and fwire == 2:
                        item["tag"] = fval.decode("utf-8")
                    elif fnum == 2 and fwire == 5:
                        item["simple_value"] = struct.unpack("<f", fval)[0]
                values.append(item)
            event["summary"] = values
        elif number == 7 and wire == 2:
            status = 0  # SessionLog.status = 1 (enum SessionStatus: START = 1)
            for snum, swire, sval in parse_fields(value):
                if snum == 1 and swire == 0:
                    status = sval
            event["session_status"] = status
        else:
            raise ValueError(f"unexpected Event field {number} (wire type {wire})")
    return event


def protobuf_decoder():
    """The real protobuf runtime's Event parser, or None when python3-protobuf is absent."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        return None
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="em_event_check.proto", package="tensorflow", syntax="proto3")
    value = f.message_type.add(name="Value")
    value.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    value.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
    value.oneof_decl.add(name="value")
    summary = f.message_type.add(name="Summary")
    summary.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".tensorflow.Value",
                      label=F.LABEL_REPEATED)
    event = f.message_type.add(name="Event")
    event.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    event.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    event.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    event.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".tensorflow.Summary",
                    label=F.LABEL_OPTIONAL, oneof_index=0)
    event.field.add(name="session_log", number=7, type=F.TYPE_MESSAGE, type_name=".tensorflow.SessionLog",
                    label=F.LABEL_OPTIONAL, oneof_index=0)
    event.oneof_decl.add(name="what")
    session_log = f.message_type.add(name="SessionLog")
    session_log.field.add(name="status", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    desc = pool.FindMessageTypeByName("tensorflow.Event")
    if hasattr(message_factory, "GetMessageClass"):
        cls = message_factory.GetMessageClass(desc)
    else:
        cls = message_factory.MessageFactory(pool).GetPrototype(desc)

    def decode(data: bytes) -> dict:
        msg = cls()
        msg.ParseFromString(data)
        out = {"wall_time": msg.wall_time, "step": msg.step}
        which = msg.WhichOneof("what")
        if which == "file_version":
            out["file_version"] = msg.file_version
        elif which == "summary":
            out["summary"] = [{"tag": v.tag, "simple_value": v.simple_value} for v in msg.summary.value]
        elif which == "session_log":
            out["session_status"] = msg.session_log.status
        return out

    return decode


def read_records(path: str):
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError(f"{path}: truncated record header at byte {pos}")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if length_crc != masked_crc32c(header):
            raise ValueError(f"{path}: bad length CRC at byte {pos}")
        end = pos + 12 + length
        if end + 4 > len(data):
            raise ValueError(f"{path}: truncated record at byte {pos}")
        payload = data[pos + 12:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if data_crc != masked_crc32c(payload):
            raise ValueError(f"{path}: bad data CRC at byte {pos}")
        yield payload
        pos = end + 4


def event_files(arg: str):
    if os.path.isdir(arg):
        return sorted(os.path.join(arg, n) for n in os.listdir(arg) if "tfevents" in n)
    return [arg]


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    check = protobuf_decoder()
    print("read_tfevents: cross-check with the protobuf runtime: " + ("yes" if check else "no (python3-protobuf absent)"),
          file=sys.stderr)
    try:
        for arg in argv[1:]:
            for path in event_files(arg):
                for i, payload in enumerate(read_records(path)):
                    event = decode_event(payload)
                    if i == 0 and event.get("file_version") != "brain.Event:2":
                        raise ValueError(f"{path}: first event is not file_version brain.Event:2")
                    if check is not None and check(payload) != event:
                        raise ValueError(f"{path}: record {i}: protobuf runtime decodes {check(payload)}, we {event}")
                    event["file"] = os.path.basename(path)
                    print(json.dumps(event))
    except (OSError, ValueError) as e:
        print(f"read_tfevents: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
