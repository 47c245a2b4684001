"""Response rendering (JSON/XML), the error envelope and the error catalogue (docs/api.md §1.5, §1.6)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailhouse.api.rpc import errors
from trailhouse.api.rpc.render import (
    JSON_CONTENT_TYPE,
    XML_CONTENT_TYPE,
    JsonDocuments,
    encode_xml_name,
    error_body,
    recommend_url,
    render,
    render_json,
    render_xml,
)
from trailhouse.api.wire import new_request_id

PROLOGUE = b'<?xml version="1.0" encoding="UTF-8"?>'

EVENT = {
    "eventId": "96.227_1606286128938_****",
    "eventVersion": 1,
    "eventType": "ConsoleSignin",
    "isGlobal": False,
    "errorCode": None,
    "userIdentity": {"accountId": "1", "type": "ram-user", "userName": "alice"},
    "additionalEventData": {"mfaChecked": "false", "callbackUrl": "https://x/?a=1&b=<2>"},
    "referencedResources": {"ACS::RAM::User": ["Alice", "Bob"]},
}


def _xml(root: str, data: dict) -> ET.Element:
    body = render_xml(root, data)
    assert body.startswith(PROLOGUE)
    return ET.fromstring(body)


# -------------------------------------------------------------------------------------------- JSON


def test_render_json() -> None:
    assert json.loads(render_json({"RequestId": "R", "Events": [EVENT]})) == {
        "RequestId": "R",
        "Events": [EVENT],
    }
    assert render_json({"a": "中"}) == '{"a":"中"}'.encode()


def test_render_json_handles_msgspec_structs_and_dataclasses() -> None:
    class S(msgspec.Struct):
        x: int
        when: datetime

    @dataclass
    class D:
        y: str

    when = datetime(2024, 1, 1, tzinfo=UTC)
    assert json.loads(render_json({"s": S(1, when), "d": D("z")})) == {
        "s": {"x": 1, "when": "2024-01-01T00:00:00Z"},
        "d": {"y": "z"},
    }


def test_render_json_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        render_json({"x": object()})


# --------------------------------------------------------------------------------------------- XML


def test_lookup_events_xml_shape() -> None:
    data = {
        "RequestId": "R",
        "NextToken": None,
        "EndTime": "2020-11-26T01:30:39Z",
        "Events": [EVENT, {**EVENT, "eventId": "second"}],
        "StartTime": "2020-11-19T01:31:09Z",
    }
    root = _xml("LookupEventsResponse", data)
    assert root.tag == "LookupEventsResponse"
    assert [child.tag for child in root] == ["RequestId", "EndTime", "Events", "Events", "StartTime"]
    first, second = root.findall("Events")
    assert first.findtext("eventId") == "96.227_1606286128938_****"
    assert second.findtext("eventId") == "second"
    assert first.find("Event") is None  # no wrapper, no per-item child
    assert first.findtext("eventVersion") == "1"
    assert first.findtext("isGlobal") == "false"
    assert first.find("errorCode") is None  # None omitted
    assert first.findtext("userIdentity/type") == "ram-user"
    assert first.findtext("additionalEventData/callbackUrl") == "https://x/?a=1&b=<2>"
    refs = first.find("referencedResources")
    assert refs is not None
    (users_tag,) = {child.tag for child in refs}
    assert users_tag == "ACS_x003A__x003A_RAM_x003A__x003A_User"
    assert [u.text for u in refs] == ["Alice", "Bob"]


def test_xml_exact_text() -> None:
    data = {"A": True, "B": [1, 2.5], "C": {"D": "x"}, "E": "", "F": {}, "G": [], "H": None}
    assert render_xml("R", data) == (
        PROLOGUE + b"<R><A>true</A><B>1</B><B>2.5</B><C><D>x</D></C><E></E><F></F></R>"
    )


def test_xml_escaping() -> None:
    body = render_xml("R", {"T": "a<b>&c\"d'e\r\nf"})
    assert b"<T>a&lt;b&gt;&amp;c\"d'e&#13;\nf</T>" in body
    assert ET.fromstring(body).findtext("T") == "a<b>&c\"d'e\r\nf"


def test_xml_forbidden_characters_are_replaced() -> None:
    root = _xml("R", {"T": "a\x00b\x1fc\ufffed\tz"})
    assert root.findtext("T") == "a\ufffdb\ufffdc\ufffdd\tz"


def test_xml_list_of_lists() -> None:
    root = _xml("R", {"M": [[1, 2], [3], "x"]})
    assert [(m.text, [i.text for i in m]) for m in root.findall("M")] == [
        (None, ["1", "2"]),
        (None, ["3"]),
        ("x", []),
    ]


@pytest.mark.parametrize(
    ("key", "encoded"),
    [
        ("eventId", "eventId"),
        ("ACS::RAM::User", "ACS_x003A__x003A_RAM_x003A__x003A_User"),
        ("1abc", "_x0031_abc"),
        ("a b", "a_x0020_b"),
        ("-x", "_x002D_x"),
        ("x-y.z", "x-y.z"),
        ("_x0041_", "_x005F_x0041_"),
        ("中文", "_x4E2D__x6587_"),
        ("a\U0001f600", "a_x0001F600_"),
        ("<&>", "_x003C__x0026__x003E_"),
    ],
)
def test_encode_xml_name(key: str, encoded: str) -> None:
    assert encode_xml_name(key) == encoded
    ET.fromstring(f"<{encoded}/>")


def test_xml_keys_that_are_not_names_do_not_crash() -> None:
    data = {"": "skipped", "a b": 1, "x:y": {"1": True}, "ok": "yes", "😀": "emoji"}
    root = _xml("R", data)
    assert [child.tag for child in root] == ["a_x0020_b", "x_x003A_y", "ok", "_x0001F600_"]
    assert root.find("x_x003A_y/_x0031_").text == "true"  # type: ignore[union-attr]


def test_xml_normalises_types_like_json() -> None:
    when = datetime(2024, 1, 1, tzinfo=UTC)
    root = _xml("R", {"When": when, "Big": 2**62, "F": 1e20})
    assert root.findtext("When") == "2024-01-01T00:00:00Z"
    assert root.findtext("Big") == str(2**62)
    assert root.findtext("F") == render_json({"F": 1e20})[5:-1].decode()  # same digits as JSON


def test_render_success() -> None:
    body, ctype = render("DescribeRegions", {"RequestId": "R"}, "JSON")
    assert (body, ctype) == (b'{"RequestId":"R"}', "application/json;charset=utf-8")
    body, ctype = render("DescribeRegions", {"RequestId": "R"}, "XML")
    assert ctype == "text/xml;charset=utf-8"
    assert body == PROLOGUE + b"<DescribeRegionsResponse><RequestId>R</RequestId></DescribeRegionsResponse>"


# ------------------------------------------------------------------- stored events spliced into JSON

# A page of events as the store keeps them (orjson's compact JSON of what was ingested), with every
# kind of value and the characters whose escaping differs between JSON writers.
PAGE = [
    EVENT,
    {
        "eventId": "e-2",
        "eventName": "CreateUser",
        "eventVersion": 1,
        "userAgent": 'aliyun-sdk-java/4.5.0 (Linux, amd64) "quoted" back\\slash',
        "requestParameters": {"PolicyDocument": '{"Statement": [{"Effect": "Allow"}]}', "Tab": "a\tb\nc"},
        "serviceName": "中文 ✓ 😀 \u2028 \x7f </x> & <y>",
        "controls": "\x00\x01\x1f",
        "numbers": [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, 1.5, -0.0, 1e-7, 1e300, 0.1],
        "nested": [[1, [2, []]], {}, {"": None}, [None, True, False]],
        "isGlobal": True,
        "errorCode": None,
    },
    {"eventId": "e-3", "additionalEventData": {}, "referencedResources": {"ACS::ECS::Instance": []}},
]


def _stored(events: list[dict]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


@pytest.mark.parametrize("fmt", ["JSON", "XML"])
def test_spliced_events_render_exactly_like_parsed_events(fmt: str) -> None:
    bodies = _stored(PAGE)
    spliced = {"RequestId": "R", "StartTime": "S", "Events": JsonDocuments(bodies), "NextToken": "T"}
    parsed = {
        "RequestId": "R",
        "StartTime": "S",
        "Events": [orjson.loads(b) for b in bodies],
        "NextToken": "T",
    }
    assert render("LookupEvents", spliced, fmt) == render("LookupEvents", parsed, fmt)  # type: ignore[arg-type]


def test_compact_bodies_are_spliced_as_they_are() -> None:
    # What makes splicing pay: the stored bytes are the reply's bytes, without parsing them.
    bodies = [b'{"eventId":"a","n":1}', b'{"eventId":"b","x":[true,null]}']
    assert render_json({"Events": JsonDocuments(bodies)}) == b'{"Events":[' + b",".join(bodies) + b"]}"


@pytest.mark.parametrize(
    "body",
    [
        b'{"eventId": "spaced", "n": 1}',  # json.dumps' separators
        b'{\n  "eventId": "indented"\n}',  # pretty-printed
        b'{"eventId":"\\u00e9\\/"}',  # escapes orjson would not write
        b'{"eventId":"tab"\t}',
        b' {"eventId":"lead"}',
    ],
)
def test_bodies_spelled_otherwise_are_rewritten_as_orjson_would(body: bytes) -> None:
    expected = b'{"Events":[' + orjson.dumps(orjson.loads(body)) + b"]}"
    assert render_json({"Events": JsonDocuments([body])}) == expected


def test_number_spellings_and_repeated_keys_go_out_as_ingested() -> None:
    # The documented limit of the splice (render._spliceable): ingested text keeps its spelling.
    body = b'{"eventId":"n","a":1.50,"b":1E3,"c":-0,"d":1,"d":2}'
    assert render_json({"Events": JsonDocuments([body])}) == b'{"Events":[' + body + b"]}"
    assert JsonDocuments([body])[0] == {"eventId": "n", "a": 1.5, "b": 1000.0, "c": 0, "d": 2}
    # A number no double holds is read as model.event_text.parse_body reads it (orjson refuses it): kept
    # as its ingested spelling, so it goes out again exactly (never as infinity or a rounded value).
    huge = b'{"eventId":"h","x":1e400}'
    assert render_json({"Events": JsonDocuments([huge])}) == b'{"Events":[' + huge + b"]}"
    assert orjson.dumps(JsonDocuments([huge])[0]) == huge


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)


@given(st.lists(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6), max_size=5))
def test_any_page_of_stored_events_renders_like_its_parsed_form(events: list[dict]) -> None:
    bodies = _stored(events)
    for fmt in ("JSON", "XML"):
        spliced = render("LookupEvents", {"Events": JsonDocuments(bodies)}, fmt)  # type: ignore[arg-type]
        parsed = [orjson.loads(b) for b in bodies]
        assert spliced == render("LookupEvents", {"Events": parsed}, fmt)  # type: ignore[arg-type]


def test_json_documents_read_like_a_list_of_parsed_documents() -> None:
    docs = JsonDocuments(_stored(PAGE))
    assert len(docs) == 3 and docs and not JsonDocuments([])
    assert docs == PAGE and list(docs) == PAGE and docs[0] == EVENT and docs[-1]["eventId"] == "e-3"
    assert docs == JsonDocuments(_stored(PAGE)) and docs != PAGE[:2]
    assert [e["eventId"] for e in docs] == [e["eventId"] for e in PAGE]


# ------------------------------------------------------------------------------------------ errors


def test_request_id_shape() -> None:
    rid = new_request_id()
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}", rid)
    assert rid != new_request_id()


def test_error_body_json() -> None:
    body, ctype = error_body(errors.InvalidVersion(), "RID", "actiontrail.cn-hangzhou.aliyuncs.com", "JSON")
    assert ctype == JSON_CONTENT_TYPE == "application/json;charset=utf-8"
    assert json.loads(body) == {
        "RequestId": "RID",
        "HostId": "actiontrail.cn-hangzhou.aliyuncs.com",
        "Code": "InvalidVersion",
        "Message": "Specified parameter Version is not valid.",
        "Recommend": "https://next.api.aliyun.com/troubleshoot?q=InvalidVersion&product=Actiontrail",
    }
    assert list(json.loads(body)) == ["RequestId", "HostId", "Code", "Message", "Recommend"]


def test_unserved_operation_recommends_the_compatibility_table_not_alibabas_troubleshooter() -> None:
    err = errors.InvalidActionNotFound.unserved("CreateFoo", "2020-07-06", [("LookupEvents", "2020-07-06")])
    body = json.loads(error_body(err, "RID", "h", "JSON")[0])
    assert body["Code"] == "InvalidAction.NotFound"
    assert "aliyun.com" not in body["Recommend"] and "docs/compatibility.md" in body["Recommend"]
    assert "CreateFoo" in body["Message"] and "LookupEvents" in body["Message"]


def test_error_body_xml() -> None:
    body, ctype = error_body(errors.InvalidAccessKeyIdNotFound(), "RID", "h", "XML")
    assert ctype == XML_CONTENT_TYPE == "text/xml;charset=utf-8"
    assert body == (
        PROLOGUE + b"<Error><RequestId>RID</RequestId><HostId>h</HostId>"
        b"<Code>InvalidAccessKeyId.NotFound</Code><Message>Specified access key is not found.</Message>"
        b"<Recommend>https://next.api.aliyun.com/troubleshoot?q=InvalidAccessKeyId.NotFound&amp;"
        b"product=Actiontrail</Recommend></Error>"
    )
    assert ET.fromstring(body).findtext("Recommend") == recommend_url("InvalidAccessKeyId.NotFound")


def test_error_body_access_denied_detail_and_extra() -> None:
    detail = {"AuthAction": "actiontrail:LookupEvents", "NoPermissionType": "ImplicitDeny"}
    err = errors.NoPermission(access_denied_detail=detail, extra={"Code": "ignored", "Detail": "d"})
    doc = json.loads(error_body(err, "R", "h", "JSON")[0])
    assert doc["Code"] == "NoPermission" and doc["AccessDeniedDetail"] == detail and doc["Detail"] == "d"
    root = ET.fromstring(error_body(err, "R", "h", "XML")[0])
    assert root.findtext("AccessDeniedDetail/AuthAction") == "actiontrail:LookupEvents"
    assert err.http_status == 403


def test_signature_mismatch_message_survives_aliyunsdkcore() -> None:
    sts = "POST&%2F&AccessKeyId%3Dtestid"
    doc = json.loads(error_body(errors.SignatureDoesNotMatch(sts), "R", "h", "JSON")[0])
    assert (
        doc["Message"]
        == f"Specified signature is not matched with our calculation. server string to sign is:{sts}"
    )
    assert doc["Message"].split(":")[1] == sts


def test_error_body_escapes_xml_in_messages() -> None:
    err = errors.SignatureDoesNotMatch("ACS3-HMAC-SHA256\n<&>")
    root = ET.fromstring(error_body(err, "R", "h", "XML")[0])
    assert root.findtext("Message", "").endswith("is:ACS3-HMAC-SHA256\n<&>")


# ------------------------------------------------------------------------------------ the catalogue


CATALOGUE = [
    (
        errors.IncompleteSignature,
        "IncompleteSignature",
        400,
        "The request signature does not conform to Alibaba Cloud standards.",
    ),
    (
        errors.InvalidAccessKeyIdNotFound,
        "InvalidAccessKeyId.NotFound",
        404,
        "Specified access key is not found.",
    ),
    (
        errors.InvalidAccessKeyIdInactive,
        "InvalidAccessKeyId.Inactive",
        400,
        "Specified access key is disabled.",
    ),
    (errors.SignatureNonceUsed, "SignatureNonceUsed", 400, "Specified signature nonce was used already."),
    (
        errors.InvalidTimeStampExpired,
        "InvalidTimeStamp.Expired",
        400,
        "Specified time stamp or date value is expired.",
    ),
    (
        errors.InvalidTimeStampFormat,
        "InvalidTimeStamp.Format",
        400,
        "Specified time stamp or date value is not well formatted.",
    ),
    (
        errors.InvalidParameterFormat,
        "InvalidParameter.Format",
        400,
        "Specified parameter format is not valid.",
    ),
    (
        errors.InvalidSignatureMethod,
        "InvalidSignatureMethod",
        400,
        "Specified signature method is not valid.",
    ),
    (errors.UnsupportedHTTPMethod, "UnsupportedHTTPMethod", 400, "This http method not supported."),
    (
        errors.InvalidActionNotFound,
        "InvalidAction.NotFound",
        404,
        "Trailhouse does not implement this operation.",
    ),
    (errors.InvalidVersion, "InvalidVersion", 400, "Specified parameter Version is not valid."),
    (errors.InsightTypeNotValid, "InsightTypeNotValid", 400, "The specified InsightType is not valid."),
    (
        errors.InsightTypeNotAvailable,
        "InsightTypeNotAvailable",
        400,
        "The specified InsightType is not available.",
    ),
    (
        errors.InvalidInsightSelectors,
        "InvalidInsightSelectors",
        400,
        "The specified InsightSelectors is not valid.",
    ),
    (
        errors.InvalidProductNotFound,
        "InvalidProduct.NotFound",
        404,
        "Cannot find product according to your specified domain.",
    ),
    (errors.MissingSecurityToken, "MissingSecurityToken", 400, "SecurityToken is mandatory for this action."),
    (
        errors.InvalidSecurityTokenExpired,
        "InvalidSecurityToken.Expired",
        400,
        "Specified SecurityToken is expired.",
    ),
    (
        errors.InvalidSecurityTokenMalformed,
        "InvalidSecurityToken.Malformed",
        400,
        "Specified SecurityToken is malformed.",
    ),
    (
        errors.InvalidSecurityTokenMismatchWithAccessKey,
        "InvalidSecurityToken.MismatchWithAccessKey",
        400,
        "Specified SecurityToken mismatch with the AccessKey.",
    ),
    (errors.Throttling, "Throttling", 400, "Request was denied due to request throttling."),
    (errors.ThrottlingUser, "Throttling.User", 400, "Request was denied due to user flow control."),
    (errors.ThrottlingApi, "Throttling.Api", 400, "Request was denied due to api flow control."),
    (
        errors.ForbiddenRAM,
        "Forbidden.RAM",
        403,
        "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
    ),
    (
        errors.NoPermission,
        "NoPermission",
        403,
        "You are not authorized to do this action. You should be authorized by RAM.",
    ),
    (
        errors.InternalError,
        "InternalError",
        500,
        "The request processing has failed due to some unknown error, exception or failure.",
    ),
    (
        errors.ServiceUnavailable,
        "ServiceUnavailable",
        503,
        "The request has failed due to a temporary failure of the server.",
    ),
    (
        errors.InvalidParameterCombination,
        "InvalidParameterCombination",
        400,
        "The end time must be later than the start time.",
    ),
    (errors.InvalidQueryParameter, "InvalidQueryParameter", 400, "The specified query parameter is invalid."),
    (
        errors.InvalidParameterDateOutOfRange,
        "InvalidParameterDateOutOfRange",
        400,
        "Query time range exceeds 30 days.",
    ),
    (errors.InvalidParameterEndTime, "InvalidParameterEndTime", 400, "The specified EndTime is invalid."),
    (
        errors.InvalidParameterStartTime,
        "InvalidParameterStartTime",
        400,
        "The specified StartTime is invalid.",
    ),
    (
        errors.InvalidParameterStartTimeExceedsCurrent,
        "InvalidParameterStartTimeExceedsCurrent",
        400,
        "The StartTime exceeds the current time. Use GMT time format for queries.",
    ),
    (
        errors.InvalidParameterStartTimeOutOfDate,
        "InvalidParameterStartTimeOutOfDate",
        400,
        "The StartTime exceeds the limit of 90 days.",
    ),
    (
        errors.InvalidTimeRangeException,
        "InvalidTimeRangeException",
        400,
        "The end time must be later than the start time. The time span cannot exceed 30 days.",
    ),
    (
        errors.InvalidTrailNameException,
        "InvalidTrailNameException",
        400,
        "The trail name is invalid.",
    ),
    (
        errors.InvalidBucketNameException,
        "InvalidBucketNameException",
        400,
        "The bucket name is invalid.",
    ),
    (
        errors.InvalidPrefixException,
        "InvalidPrefixException",
        400,
        "The OSS key prefix is invalid.",
    ),
    (
        errors.InvalidDeliveryConfigurationException,
        "InvalidDeliveryConfigurationException",
        400,
        "You must specify at least one SLS project or OSS bucket.",
    ),
    (
        errors.RepeatOssBucket,
        "RepeatOssBucket",
        400,
        "The bucket is already used by another trail.",
    ),
    (
        errors.TrailAlreadyExistsException,
        "TrailAlreadyExistsException",
        400,
        "A trail with this name already exists.",
    ),
    (
        errors.MaximumNumberOfOrganizationTrailExceeded,
        "MaximumNumberOfOrganizationTrailExceeded",
        400,
        "Your account can create only one organization trail.",
    ),
    (
        errors.NotAllowCreateOrganizationTrail,
        "NotAllowCreateOrganizationTrail",
        400,
        "Your account is not allowed to create an organization trail.",
    ),
    (
        errors.InsufficientBucketPolicyException,
        "InsufficientBucketPolicyException",
        403,
        "ActionTrail is not allowed to write to the bucket.",
    ),
    (
        errors.MaximumNumberOfTrailsExceededException,
        "MaximumNumberOfTrailsExceededException",
        403,
        "The number of trails exceeds the upper limit (5).",
    ),
    (
        errors.BucketDoesNotExistException,
        "BucketDoesNotExistException",
        404,
        "The bucket does not exist.",
    ),
    (
        errors.TrailNotFoundException,
        "TrailNotFoundException",
        404,
        "The trail does not exist.",
    ),
    (
        errors.DeliveryHistoryJobNotFound,
        "DeliveryHistoryJobNotFound",
        404,
        "The delivery history job does not exist.",
    ),
    (
        errors.MaximumNumberOfDeliveryHistoryJobsExceeded,
        "MaximumNumberOfDeliveryHistoryJobsExceeded",
        403,
        "Your account can have only one running delivery history job.",
    ),
    (
        errors.DataEventSelectorNotFound,
        "DataEventSelectorNotFound",
        404,
        "The trail has no data event selector.",
    ),
]


@pytest.mark.parametrize(("cls", "code", "status", "message"), CATALOGUE, ids=[c[1] for c in CATALOGUE])
def test_catalogue(cls: type[errors.ApiError], code: str, status: int, message: str) -> None:
    err = cls()
    assert (err.code, err.http_status, err.message) == (code, status, message)
    assert isinstance(err, errors.ApiError)
    assert str(err) == f"{code}: {message}"
    assert cls("custom").message == "custom"


def _all_error_classes() -> set[type[errors.ApiError]]:
    seen: set[type[errors.ApiError]] = set()
    todo = [errors.ApiError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__ == errors.__name__ and sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def test_catalogue_is_complete() -> None:
    parametrised = {errors.SignatureDoesNotMatch, errors.Missing, errors.InvalidParameter, errors.Invalid}
    assert _all_error_classes() - parametrised == {c[0] for c in CATALOGUE}


def test_parametrised_errors() -> None:
    m = errors.Missing("Timestamp")
    assert (m.code, m.http_status, m.message) == (
        "MissingTimestamp",
        400,
        "Timestamp is mandatory for this action.",
    )
    assert errors.Missing.code == "MissingParameter"  # the instance attribute did not leak to the class
    p = errors.InvalidParameter("MaxResults")
    assert (p.code, p.message) == ("InvalidParameter", "Specified parameter MaxResults is not valid.")
    assert errors.InvalidParameter().message == "Specified parameter is not valid."
    i = errors.Invalid("SignatureVersion")
    assert (i.code, i.message) == (
        "InvalidSignatureVersion",
        "Specified parameter SignatureVersion is not valid.",
    )
    assert isinstance(i, errors.InvalidParameter)
    s = errors.SignatureDoesNotMatch("GET&%2F&x")
    assert (s.code, s.http_status) == ("SignatureDoesNotMatch", 400)
    assert (
        s.message
        == "Specified signature is not matched with our calculation. server string to sign is:GET&%2F&x"
    )
    assert s.string_to_sign == "GET&%2F&x"
