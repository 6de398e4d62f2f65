#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/seed-*) from the golden vectors in
tests/vectors/*.hex plus a few hand-built push-protocol sessions. Deterministic; rerun after
adding vectors: python3 fuzz/seed.py"""
import os, struct, pathlib

root = pathlib.Path(__file__).resolve().parent.parent
vectors = {p.stem: bytes.fromhex(p.read_text().strip()) for p in sorted((root / "tests/vectors").glob("*.hex"))}

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value) if value else b""
    value = value.encode() if isinstance(value, str) else value
    return varint(num << 3 | 2) + varint(len(value)) + value if value else b""

def frame(kind, protocol, payload=b"", request_id=0, deadline=0, traceparent=""):
    body = (field(1, 1) + field(2, kind) + field(3, protocol) + field(4, payload) + field(5, request_id)
            + field(7, deadline) + field(8, traceparent))
    return b"\x01" + struct.pack("<I", len(body)) + body

def lbytes(b):
    return struct.pack(">I", len(b)) + b

def lframe(kind, stream, payload):
    return bytes([kind, 0]) + struct.pack(">II", stream, len(payload)) + payload

def lpush(correlation_id, payload):
    return lframe(0x15, 1, struct.pack(">Q", correlation_id) + lbytes(payload))

PUSH, CONTROL = 0xF0B5, 0x0000
REQUEST, RESPONSE, EVENT, CANCEL = 0, 1, 2, 3
registration = (field(1, "worker-1") + field(2, "q") + field(3, "default") + field(4, "echo")
                + field(6, varint(0x7001)))
reg_frame = frame(REQUEST, PUSH, registration, request_id=1)
reply_ok = frame(RESPONSE, PUSH, field(1, b"echo:hi"), request_id=5)
reply_fail = frame(RESPONSE, PUSH, field(2, field(1, 1001) + field(2, "could not")), request_id=6)
ack = frame(RESPONSE, PUSH, field(1, 1) + field(3, 2), request_id=1)
push = frame(EVENT, PUSH, field(1, 0x7001) + field(2, b"job"), request_id=5, deadline=1700000000123,
             traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
cancel = frame(CANCEL, PUSH, request_id=5)

ADMIN, SESSION = 0xAD01, 0x5350

def hello(service, version):
    return field(1, 1) + field(2, 1) + field(3, service) + field(4, version) + field(5, "seed/1")

def session(kind, request_id, message=b"", deadline=0):
    return frame(kind, SESSION, message, request_id=request_id, deadline=deadline)

HELLO = [0x01, 0x20, 0x00, 0x01]
seeds = {
    "frame_decode": {k: v[5:] for k, v in vectors.items()},
    "frame_reader": {**{k: b"\x07" + v for k, v in vectors.items()},
                     "session": b"\x03" + vectors["hello_request"] + reg_frame + reply_ok + reply_fail,
                     "truncated": b"\x09" + vectors["consumer_event"] + vectors["hello_request"][:30]},
    "mux_poll": {**{k: b"\x00" + v for k, v in vectors.items()},
                 "detector": b"\x03\x00\x02\x00" + vectors["probe_request"] + vectors["consumer_request_minimal"],
                 "pipelined": b"\x00" + vectors["probe_request"] + vectors["consumer_request_deadline"]
                              + vectors["consumer_event"]},
    "push_server": {"session": b"\x01" + vectors["hello_request"] + reg_frame + reply_ok + reply_fail,
                    "pid_mismatch": b"\x02" + vectors["hello_request"] + reg_frame,
                    "no_peer": b"\x00" + vectors["hello_request_replayable"] + reg_frame + reply_ok},
    "push_worker": {"session": vectors["hello_reply_negotiated"] + ack + push + cancel + push,
                    "refused": vectors["hello_reply_refused_rate_limited"],
                    "rejected": vectors["hello_reply_negotiated"]
                                + frame(RESPONSE, PUSH, field(2, "no"), request_id=1)},
    # liminal_worker: what a liminal server sends a worker (10-byte header: type, flags, stream, length).
    "liminal_worker": {
        "session": lframe(0x02, 0, struct.pack(">HHI", 1, 2, 0)) + lframe(0x18, 0, b"\x00")
                   + lpush(2, b'{"activity":"from-raw"}') + lframe(0x13, 0, b"") + lframe(0x7E, 9, b"skip")
                   + lpush(3, b"second") + lframe(0x04, 0, b""),
        "refused": lframe(0x03, 0, struct.pack(">H", 6) + b"\x01" + lbytes(b"bad token")),
        "rejected": lframe(0x02, 0, struct.pack(">HHI", 1, 2, 0)) + lframe(0x18, 0, b"\x01" + lbytes(b"no")),
        "reason": lframe(0x02, 0, struct.pack(">HHI", 1, 3, 0)) + lframe(0x18, 0, b"\x00") + lpush(1, b"x")
                  + lframe(0x20, 0, b"\x01" + struct.pack(">H", 1) + lbytes(b"grant_revoked")),
    },
    "broker_hello": {**{k: b"\x00" + v for k, v in vectors.items() if k.startswith("hello_request")},
                     **{f"{svc}-{ver}": b"\x00" + frame(REQUEST, CONTROL, hello(svc, ver), request_id=3)
                        for svc, ver in [("echo", "1.0.0"), ("pinned", "1.2.3"), ("pinned", "1.2.4"),
                                         ("strict", "0.9.0"), ("strict", "0.4.0"), ("strict", "2.0.0"),
                                         ("nope", "1.0.0")]},
                     "pid": b"\x02" + frame(REQUEST, CONTROL, hello("echo", "1.0.0") + field(10, 4242), request_id=3),
                     "admin": b"\x00" + frame(REQUEST, ADMIN, field(1, 1), request_id=9),
                     "event": b"\x00" + frame(EVENT, CONTROL, hello("echo", "1.0.0"))},
    # session_router: flags byte (bit 0 side, bit 1 dispatcher, bits 2-3 calls), then the peer's bytes.
    "session_router": {"answers": bytes([0b1110]) + session(RESPONSE, 1, field(2, b"a"))
                                  + session(EVENT, 3, field(2, b"chunk")) + session(EVENT, 3, field(4, 1))
                                  + session(RESPONSE, 3, field(2, b"b"))
                                  + session(RESPONSE, 5, field(3, field(1, 13) + field(2, "no"))),
                       "requests": bytes([0b0010]) + session(REQUEST, 2, field(1, 0x8000) + field(2, b"q"))
                                   + session(EVENT, 2, field(2, b"up")) + session(CANCEL, 2)
                                   + session(REQUEST, 4, field(2, b"q"), deadline=1),
                       "no_dispatcher": bytes([0b0000]) + session(REQUEST, 2, field(2, b"q")),
                       "wrong_side": bytes([0b0101]) + session(REQUEST, 2, field(2, b"q")),
                       "foreign": bytes([0b0110]) + frame(REQUEST, PUSH, b"x", request_id=1)},
    "handoff": {"offer": vectors["handoff_offer"], "ack_as_offer": vectors["handoff_ack_accepted"]},
    # c_api: op byte, argument byte, then data; see c_api in src/lib.rs.
    "c_api": {"decode": bytes([0, len(vectors["consumer_request_traceparent"]) // 2 + 1])
                        + vectors["consumer_request_traceparent"] + b"\x00" * 40,
              "mux": bytes([2, 0x01, 3, 0]) + b"\x00" + bytes([3, 28]) + vectors["probe_request"]
                     + bytes([4, 0, 5, 1, 3, 6]) + vectors["consumer_request_minimal"] + b"\x00"
                     + bytes([6, 1, 7, 16]) + bytes(range(16)) + bytes([9, 0, 10, 5, 8, 0])},
    # push_loop / broker_loop: option bytes, then a script of steps (low nibble: step, high
    # nibble: which peer; see push_loop and broker_loop in fuzz/src/lib.rs). HELLO is a Hello
    # with this process's pid for the first service and version of the step's lists.
    "push_loop": {
        "reply": bytes([0x00, 0x00, *HELLO, 0x02, 0x02, 0x07, 0x09, 0x00, 0x04, 0x00, 0x07, 0x04, 0x0C,
                        0x0D, 0x02, 0x0A, 0x00, 0x04, 0x05, 0x07]),
        "decide": bytes([0x03, 0x00, *HELLO, 0x02, 0x02, 0x0D, 0x02, 0x0B, 0x00, 0x09, 0x01, 0x04, 0x00,
                         0x0D, 0x01, 0x07, 0x04, 0x0D, 0x0C, 0x00, 0x07]),
        "timeouts": bytes([0x18, 0x00, *HELLO, 0x02, 0x02, 0x03, 0x02, 0x05, 0x0D, 0x07, 0x07]),
        "two_workers": bytes([0x20, 0x00, 0x10, *HELLO, 0x11, 0x20, 0x00, 0x01, 0x02, 0x02, 0x12, 0x03,
                              0x09, 0x01, 0x90, 0x02, 0x09, 0x02, 0x10, 0x06, 0x07, 0x17, 0x14, 0x0C,
                              0x15, 0x0C, 0x04, 0x01, 0x0C, 0x08, 0x01, 0x0D, 0x03]),
        "auth": bytes([0x04, 0x00, 0x01, 0x60, 0x00, 0x01, 0x02, 0x02, 0x07, 0x0F, 0xFF, 0x09, 0x00, 0x04, 0x00]),
    },
    "broker_loop": {
        "hello": bytes([0x00, 0x00, 0x00, 0x01, 0x24, 0x00, 0x01, 0x0C]),
        "handoff": bytes([0x07, 0x00, 0x00, 0x01, 0xA5, 0x00, 0x01, 0x0B, 0x03, 0x08, 0x00, 0x0B, 0x02, 0x0C, 0x0A]),
        "admin": bytes([0x04, 0x00, 0x00, 0x03, 0x09, 0x0C, 0x00, 0x13, 0x1D, 0x1C]),
        "shutdown": bytes([0x08, 0x05, 0x00, 0x10, 0x07, 0x01, 0x24, 0x00, 0x01, 0x12, 0x24, 0x01, 0x02,
                           0x05, 0x0B, 0x07, 0x0C, 0x1C, 0x00, 0x01, 0x25, 0x04, 0x09, 0x0C]),
    },
}
for target, files in seeds.items():
    d = root / "fuzz/corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (d / f"seed-{name}").write_bytes(data)
print({t: len(f) for t, f in seeds.items()})
