"""Reproducible repairs of ONNX files, on the protobuf wire format (no `onnx` package needed).

`initializers_from_inputs`: drop every graph input that is an initializer or that no node reads. Old exporters
listed weights as graph inputs, and a block-quantized copy of such a model keeps the names of the float weights it
replaced as inputs that nothing consumes: ONNX Runtime then sees 175 inputs where the network has one, and a caller
that feeds the one real input is refused. Weights, nodes and outputs are untouched, so the result is the same bytes
on every machine, and set-up pins it by its own sha256.
"""
from __future__ import annotations


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _encode_varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes):
    """Yields (field number, wire type, payload, raw bytes of the whole field)."""
    i = 0
    while i < len(buf):
        start = i
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = _varint(buf, i)
            payload = None
        elif wire == 1:
            i += 8
            payload = None
        elif wire == 2:
            n, i = _varint(buf, i)
            payload = buf[i:i + n]
            i += n
        elif wire == 5:
            i += 4
            payload = None
        else:
            raise ValueError(f"unsupported protobuf wire type {wire} at byte {start}")
        yield number, wire, payload, buf[start:i]


def _name(message: bytes, field: int) -> str | None:
    for number, wire, payload, _ in _fields(message):
        if number == field and wire == 2:
            return payload.decode("utf-8")
    return None


def _strings(message: bytes, field: int) -> list[str]:
    return [p.decode("utf-8") for n, w, p, _ in _fields(message) if n == field and w == 2]


# ModelProto.graph = 7; GraphProto.node = 1, .initializer = 5, .input = 11, .output = 12; NodeProto.input = 1;
# TensorProto.name = 8; ValueInfoProto.name = 1.
def initializers_from_inputs(model: bytes) -> bytes:
    out = bytearray()
    found_graph = False
    for number, wire, payload, raw in _fields(model):
        if number != 7 or wire != 2:
            out += raw
            continue
        found_graph = True
        inits = {_name(p, 8) for n, w, p, _ in _fields(payload) if n == 5 and w == 2}
        read = {i for n, w, p, _ in _fields(payload) if n == 1 and w == 2 for i in _strings(p, 1)}
        read |= {_name(p, 1) for n, w, p, _ in _fields(payload) if n == 12 and w == 2}
        graph = bytearray()
        for n, w, p, r in _fields(payload):
            if n == 11 and w == 2 and (_name(p, 1) in inits or _name(p, 1) not in read):
                continue
            graph += r
        out += _encode_varint((7 << 3) | 2) + _encode_varint(len(graph)) + graph
    if not found_graph:
        raise ValueError("not an ONNX model: no graph")
    return bytes(out)


REPAIRS = {"initializers_from_inputs": initializers_from_inputs}
