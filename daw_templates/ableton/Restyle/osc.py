"""Just enough OSC 1.0 (strings, int32, float32) for Live's embedded Python, which cannot install python-osc."""

import struct


_NUMBERS = {"i": ">i", "f": ">f", "h": ">q", "d": ">d"}  # OSC type tag -> big-endian struct layout


def _pad(data):
    return data + b"\0" * (4 - len(data) % 4)


def encode(address, args):
    """One OSC message as bytes."""
    tags, payload = ",", b""
    for arg in args:
        if isinstance(arg, bool) or isinstance(arg, int):
            tags += "i"
            payload += struct.pack(">i", int(arg))
        elif isinstance(arg, float):
            tags += "f"
            payload += struct.pack(">f", arg)
        else:
            tags += "s"
            payload += _pad(str(arg).encode("utf-8"))
    return _pad(address.encode("utf-8")) + _pad(tags.encode("ascii")) + payload


def _read_string(data, pos):
    end = data.index(b"\0", pos)
    text = data[pos:end].decode("utf-8", "replace")
    return text, (end // 4 + 1) * 4


def decode(data):
    """(address, [args]) from one OSC message; bundles and unknown types raise ValueError."""
    address, pos = _read_string(data, 0)
    tags, pos = _read_string(data, pos)
    if not address.startswith("/") or not tags.startswith(","):
        raise ValueError("not an OSC message")
    args = []
    for tag in tags[1:]:
        if tag in _NUMBERS:
            layout = _NUMBERS[tag]
            args.append(struct.unpack(layout, data[pos:pos + struct.calcsize(layout)])[0])
            pos += struct.calcsize(layout)
        elif tag == "s":
            value, pos = _read_string(data, pos)
            args.append(value)
        elif tag in "TF":
            args.append(tag == "T")
        else:
            raise ValueError("unsupported OSC type " + tag)
    return address, args
