"""The two BER (X.690) pieces that both hand-written wire formats need: a tag-length-value and an INTEGER.

SNMP (monitoring/probes/snmp_wire.py) and LDAP adds (directory/ldap_wire.py) are encoded by hand because
pyasn1's objects cost more CPU than the rest of the work; both use definite lengths only.
"""
from __future__ import annotations


def tlv(tag: int, body: bytes) -> bytes:
    """Tag, definite length (short form below 128, long form above), body."""
    size = len(body)
    if size < 0x80:
        return bytes((tag, size)) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + body


def integer(value: int) -> bytes:
    """An INTEGER in the fewest two's-complement bytes."""
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))
