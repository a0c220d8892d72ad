"""The hand-written SNMP v2c codec against pysnmp's own encoder and decoder (pyasn1), without an agent."""

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from itops.monitoring.probes.snmp_wire import GET, GETBULK, WireError, decode_response, encode_request

v2c = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


def test_requests_are_what_pysnmp_reads():
    community = b"a-community-" + b"x" * 150  # long enough for a long-form length
    oids = [SYS_UPTIME, (1, 3, 6, 1, 4, 1, 8072, 3, 2, 10, 4_294_967_295)]
    for pdu_type, non_repeaters, repetitions in ((GET, 0, 0), (GETBULK, 1, 25)):
        message, _ = decoder.decode(encode_request(community, pdu_type, 7_654_321, oids, non_repeaters, repetitions),
                                    asn1Spec=v2c.Message())
        pdu = v2c.apiMessage.get_pdu(message)
        assert bytes(v2c.apiMessage.get_community(message)) == community
        assert int(v2c.apiPDU.get_request_id(pdu)) == 7_654_321
        assert [tuple(oid) for oid, _ in v2c.apiPDU.get_varbinds(pdu)] == oids
        assert isinstance(pdu, v2c.GetBulkRequestPDU if pdu_type == GETBULK else v2c.GetRequestPDU)
        if pdu_type == GETBULK:
            assert int(v2c.apiBulkPDU.get_non_repeaters(pdu)) == 1
            assert int(v2c.apiBulkPDU.get_max_repetitions(pdu)) == 25


def test_responses_of_every_type_are_read():
    pdu = v2c.ResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_request_id(pdu, 42)
    values = [
        ((1, 3, 6, 1, 2, 1, 1, 1, 0), v2c.OctetString("Linux vm 6.18 x86_64"), "Linux vm 6.18 x86_64"),
        (SYS_UPTIME, v2c.TimeTicks(4_000_000_000), 4_000_000_000),
        ((1, 3, 6, 1, 2, 1, 1, 2, 0), v2c.ObjectIdentifier((1, 3, 6, 1, 4, 1, 8072)), (1, 3, 6, 1, 4, 1, 8072)),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 10, 1), v2c.Counter32(4_294_967_295), 4_294_967_295),
        ((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6, 1), v2c.Counter64(2**64 - 1), 2**64 - 1),
        ((1, 3, 6, 1, 2, 1, 4, 20, 1, 1), v2c.IpAddress("10.1.2.3"), "10.1.2.3"),
        ((1, 3, 6, 1, 2, 1, 25, 1, 6, 0), v2c.Gauge32(3), 3),
        ((1, 3, 6, 1, 4, 1, 1, 0), v2c.Integer(-129), -129),
        ((1, 3, 6, 1, 2, 1, 2, 2, 1, 6, 1), v2c.OctetString(hexValue="00155d01ff02"), "0x00155d01ff02"),
        ((1, 3, 6, 1, 2, 1, 1, 9, 0), v2c.NoSuchInstance(""), None),
        ((2, 999, 1), v2c.EndOfMibView(""), None),
    ]
    v2c.apiPDU.set_varbinds(pdu, [(oid, value) for oid, value, _ in values])
    message = v2c.Message()
    v2c.apiMessage.set_defaults(message)
    v2c.apiMessage.set_community(message, "public")
    v2c.apiMessage.set_pdu(message, pdu)
    request_id, error_status, error_index, varbinds = decode_response(encoder.encode(message))
    assert (request_id, error_status, error_index) == (42, 0, 0)
    assert varbinds == [(oid, expected) for oid, _, expected in values]


def test_garbage_is_refused():
    for garbage in (b"", b"\x30", b"\x30\x05\x02\x01\x01\x04", b"SIP/2.0 200 OK\r\n\r\n", b"\x30\x84\xff\xff\xff\xff"):
        with pytest.raises((WireError, IndexError)):
            decode_response(garbage)
