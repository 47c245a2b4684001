"""``trailhouse verify`` names events by their eventId as the store indexed it: an integer eventId
is its decimal text, and an "eventId" nested in another field is not the event's."""

from __future__ import annotations

from trailhouse.service.integrity.verify import Report, _diff


def test_differences_are_named_by_the_events_own_ids() -> None:
    reference = [
        b'{"requestParameters":{"eventId":"not-mine"},"eventId":"top","v":1}',
        b'{"eventId":41,"v":1}',
        b'{"eventId":42,"v":1}',
    ]
    entries = [reference[0], b'{"eventId":41,"v":1}', b'{"eventId":42,"v":2}']
    report = Report()
    _diff(entries, reference, report, in_log_order=True)
    assert [(f.kind, f.detail) for f in report.findings] == [("altered", {"eventId": "42", "leafIndex": 2})]

    report = Report()
    _diff([reference[1], reference[0]], reference, report, in_log_order=False)
    kinds = sorted((f.kind, f.detail.get("eventId")) for f in report.findings)
    assert kinds == [("missing", "42")]
