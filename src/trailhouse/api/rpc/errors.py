"""Every error the ActionTrail wire protocol can return, one class per code.

Codes, HTTP statuses and messages are Alibaba Cloud's (gateway errors, LookupEvents' own codes;
docs/api.md "Errors" lists them). Class attributes
carry the defaults; an instance may override ``message`` (and, for the parametrised families
``Missing``/``Invalid``, ``code``). Rendering lives in ``render.error_body``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ApiError",
    "BucketDoesNotExistException",
    "DataEventSelectorNotFound",
    "DeliveryHistoryJobNotFound",
    "ForbiddenRAM",
    "IncompleteSignature",
    "InsufficientBucketPolicyException",
    "InsightTypeNotAvailable",
    "InsightTypeNotValid",
    "InternalError",
    "Invalid",
    "InvalidAccessKeyIdInactive",
    "InvalidAccessKeyIdNotFound",
    "InvalidActionNotFound",
    "InvalidBucketNameException",
    "InvalidDeliveryConfigurationException",
    "InvalidInsightSelectors",
    "InvalidParameter",
    "InvalidParameterCombination",
    "InvalidParameterDateOutOfRange",
    "InvalidParameterEndTime",
    "InvalidParameterFormat",
    "InvalidParameterStartTime",
    "InvalidParameterStartTimeExceedsCurrent",
    "InvalidParameterStartTimeOutOfDate",
    "InvalidPrefixException",
    "InvalidProductNotFound",
    "InvalidQueryParameter",
    "InvalidSecurityTokenExpired",
    "InvalidSecurityTokenMalformed",
    "InvalidSecurityTokenMismatchWithAccessKey",
    "InvalidSignatureMethod",
    "InvalidTimeRangeException",
    "InvalidTimeStampExpired",
    "InvalidTimeStampFormat",
    "InvalidTrailNameException",
    "InvalidVersion",
    "MaximumNumberOfDeliveryHistoryJobsExceeded",
    "MaximumNumberOfOrganizationTrailExceeded",
    "MaximumNumberOfTrailsExceededException",
    "Missing",
    "MissingSecurityToken",
    "NoPermission",
    "NotAllowCreateOrganizationTrail",
    "RepeatOssBucket",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "SignatureNonceUsed",
    "Throttling",
    "ThrottlingApi",
    "ThrottlingUser",
    "TrailAlreadyExistsException",
    "TrailNotFoundException",
    "UnsupportedHTTPMethod",
]


class ApiError(Exception):
    """Base of all wire errors. Subclasses set ``code``, ``http_status`` and ``message``.

    ``access_denied_detail`` becomes the ``AccessDeniedDetail`` object of the body; ``extra`` holds
    further top-level body fields (they never override the standard ones).
    """

    code: str = "InternalError"
    http_status: int = 500
    message: str = "The request processing has failed due to some unknown error, exception or failure."
    #: The envelope's Recommend, when Alibaba's troubleshooter page for the code would mislead.
    recommend: str | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        access_denied_detail: Mapping[str, Any] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        if message is not None:
            self.message = message
        self.access_denied_detail: dict[str, Any] | None = (
            dict(access_denied_detail) if access_denied_detail is not None else None
        )
        self.extra: dict[str, Any] = dict(extra) if extra else {}
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


# ------------------------------------------------------------------------- signature and credentials


class IncompleteSignature(ApiError):
    """A missing or structurally invalid signature (as opposed to a wrong one)."""

    code = "IncompleteSignature"
    http_status = 400
    message = "The request signature does not conform to Alibaba Cloud standards."


class SignatureDoesNotMatch(ApiError):
    """A well-formed signature that does not match ours.

    The message must end in ``server string to sign is:<StringToSign>``: aliyunsdkcore evaluates
    ``Message.split(':')[1]`` for this code and crashes without a colon.
    """

    code = "SignatureDoesNotMatch"
    http_status = 400
    message = "Specified signature is not matched with our calculation. server string to sign is:"

    def __init__(self, string_to_sign: str, **kwargs: Any) -> None:
        self.string_to_sign = string_to_sign
        super().__init__(type(self).message + string_to_sign, **kwargs)


class InvalidAccessKeyIdNotFound(ApiError):
    code = "InvalidAccessKeyId.NotFound"
    http_status = 404
    message = "Specified access key is not found."


class InvalidAccessKeyIdInactive(ApiError):
    code = "InvalidAccessKeyId.Inactive"
    http_status = 400
    message = "Specified access key is disabled."


class SignatureNonceUsed(ApiError):
    code = "SignatureNonceUsed"
    http_status = 400
    message = "Specified signature nonce was used already."


class InvalidTimeStampExpired(ApiError):
    code = "InvalidTimeStamp.Expired"
    http_status = 400
    message = "Specified time stamp or date value is expired."


class InvalidTimeStampFormat(ApiError):
    code = "InvalidTimeStamp.Format"
    http_status = 400
    message = "Specified time stamp or date value is not well formatted."


class InvalidSignatureMethod(ApiError):
    code = "InvalidSignatureMethod"
    http_status = 400
    message = "Specified signature method is not valid."


class MissingSecurityToken(ApiError):
    code = "MissingSecurityToken"
    http_status = 400
    message = "SecurityToken is mandatory for this action."


class InvalidSecurityTokenMalformed(ApiError):
    """The answer to any presented STS token, since this server issues none.

    A token we never issued cannot be parsed as one of ours, which is what "malformed" says.
    ``.Expired`` would invite credential providers to refresh and retry forever, and
    ``.MismatchWithAccessKey`` presupposes a token that is valid in itself.
    """

    code = "InvalidSecurityToken.Malformed"
    http_status = 400
    message = "Specified SecurityToken is malformed."


class InvalidSecurityTokenExpired(ApiError):
    code = "InvalidSecurityToken.Expired"
    http_status = 400
    message = "Specified SecurityToken is expired."


class InvalidSecurityTokenMismatchWithAccessKey(ApiError):
    code = "InvalidSecurityToken.MismatchWithAccessKey"
    http_status = 400
    message = "Specified SecurityToken mismatch with the AccessKey."


# ------------------------------------------------------------------------------- parameters, routing


class Missing(ApiError):
    """``Missing{Name}``: a mandatory parameter is absent (``Missing("Timestamp")`` → MissingTimestamp)."""

    code = "MissingParameter"
    http_status = 400
    message = "A mandatory parameter is not supplied."

    def __init__(self, name: str, message: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.code = f"Missing{name}"
        super().__init__(
            message if message is not None else f"{name} is mandatory for this action.", **kwargs
        )


class InvalidParameter(ApiError):
    """Generic ``InvalidParameter`` naming the offending parameter in the message."""

    code = "InvalidParameter"
    http_status = 400
    message = "Specified parameter is not valid."

    def __init__(self, name: str | None = None, message: str | None = None, **kwargs: Any) -> None:
        self.name = name
        if message is None and name is not None:
            message = f"Specified parameter {name} is not valid."
        super().__init__(message, **kwargs)


class Invalid(InvalidParameter):
    """``Invalid{Name}``, the gateway's per-parameter form (``Invalid("SignatureVersion")``)."""

    def __init__(self, name: str, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, message, **kwargs)
        self.code = f"Invalid{name}"


class InvalidParameterFormat(ApiError):
    """``Format`` is neither JSON nor XML."""

    code = "InvalidParameter.Format"
    http_status = 400
    message = "Specified parameter format is not valid."


class UnsupportedHTTPMethod(ApiError):
    # 400 follows the current gateway error table; an older table's 403 is not used.
    code = "UnsupportedHTTPMethod"
    http_status = 400
    message = "This http method not supported."


class InvalidActionNotFound(ApiError):
    """An Action this server does not serve: Alibaba's code and status, and a message that says so.

    Alibaba's own message ("Specified api is not found, please check your url and method.") sends a
    developer looking for a typo; here the operation may well exist in the cloud and simply not be
    implemented, so the message says that and lists what is served (the gateway passes the
    operation table, which this module cannot import without a cycle).
    """

    code = "InvalidAction.NotFound"
    http_status = 404
    message = "Trailhouse does not implement this operation."
    # Alibaba's troubleshooter would explain a typo, not an operation this server lacks.
    recommend = "Trailhouse serves the operations of docs/compatibility.md in its repository."

    @classmethod
    def unserved(cls, action: str, version: str, served: Iterable[tuple[str, str]]) -> InvalidActionNotFound:
        by_version: dict[str, list[str]] = {}
        for served_action, served_version in sorted(served, key=lambda pair: (pair[1], pair[0])):
            by_version.setdefault(served_version, []).append(served_action)
        listing = "; ".join(f"{v}: {', '.join(actions)}" for v, actions in by_version.items())
        # The action is the client's text: bounded, so a huge or odd value cannot bloat the answer.
        shown = action[:64] + ("…" if len(action) > 64 else "") if action else "(none)"
        return cls(
            f"Trailhouse does not implement the operation {shown} (version {version}). It serves: {listing}."
        )


class InvalidVersion(ApiError):
    code = "InvalidVersion"
    http_status = 400
    message = "Specified parameter Version is not valid."


class InvalidProductNotFound(ApiError):
    code = "InvalidProduct.NotFound"
    http_status = 404
    message = "Cannot find product according to your specified domain."


# ------------------------------------------------------------------------ throttling and permissions


class Throttling(ApiError):
    code = "Throttling"
    http_status = 400
    message = "Request was denied due to request throttling."


class ThrottlingUser(ApiError):
    code = "Throttling.User"
    http_status = 400
    message = "Request was denied due to user flow control."


class ThrottlingApi(ApiError):
    code = "Throttling.Api"
    http_status = 400
    message = "Request was denied due to api flow control."


class ForbiddenRAM(ApiError):
    code = "Forbidden.RAM"
    http_status = 403
    message = "User not authorized to operate on the specified resource, or this API doesn't support RAM."


class NoPermission(ApiError):
    """Pass ``access_denied_detail`` (AuthAction, AuthPrincipalType, NoPermissionType, …) when known."""

    code = "NoPermission"
    http_status = 403
    message = "You are not authorized to do this action. You should be authorized by RAM."


class InternalError(ApiError):
    code = "InternalError"
    http_status = 500
    message = "The request processing has failed due to some unknown error, exception or failure."


class ServiceUnavailable(ApiError):
    code = "ServiceUnavailable"
    http_status = 503
    message = "The request has failed due to a temporary failure of the server."


# ----------------------------------------------------------------------- LookupEvents business codes


class InvalidParameterCombination(ApiError):
    code = "InvalidParameterCombination"
    http_status = 400
    message = "The end time must be later than the start time."


class InvalidQueryParameter(ApiError):
    code = "InvalidQueryParameter"
    http_status = 400
    message = "The specified query parameter is invalid."

    @classmethod
    def because(cls, reason: str) -> InvalidQueryParameter:
        """The documented message first (clients match on it), then what exactly was wrong."""
        return cls(f"{cls.message.rstrip('.')}: {reason}")


class InvalidParameterDateOutOfRange(ApiError):
    code = "InvalidParameterDateOutOfRange"
    http_status = 400
    message = "Query time range exceeds 30 days."


class InvalidParameterEndTime(ApiError):
    code = "InvalidParameterEndTime"
    http_status = 400
    message = "The specified EndTime is invalid."


class InvalidParameterStartTime(ApiError):
    code = "InvalidParameterStartTime"
    http_status = 400
    message = "The specified StartTime is invalid."


class InvalidParameterStartTimeExceedsCurrent(ApiError):
    code = "InvalidParameterStartTimeExceedsCurrent"
    http_status = 400
    message = "The StartTime exceeds the current time. Use GMT time format for queries."


class InvalidParameterStartTimeOutOfDate(ApiError):
    code = "InvalidParameterStartTimeOutOfDate"
    http_status = 400
    message = "The StartTime exceeds the limit of 90 days."


class InvalidTimeRangeException(ApiError):
    code = "InvalidTimeRangeException"
    http_status = 400
    message = "The end time must be later than the start time. The time span cannot exceed 30 days."


# ------------------------------------------------------------------------------ trail business codes
# CreateTrail/UpdateTrail/DeleteTrail/StartLogging/StopLogging codes and statuses from ActionTrail's
# published API metadata; the delivery-history ones are Trailhouse's (docs/compatibility.md, "Trails").


class InvalidTrailNameException(ApiError):
    code = "InvalidTrailNameException"
    http_status = 400
    message = "The trail name is invalid."


class InvalidBucketNameException(ApiError):
    code = "InvalidBucketNameException"
    http_status = 400
    message = "The bucket name is invalid."


class InvalidPrefixException(ApiError):
    code = "InvalidPrefixException"
    http_status = 400
    message = "The OSS key prefix is invalid."


class InvalidDeliveryConfigurationException(ApiError):
    code = "InvalidDeliveryConfigurationException"
    http_status = 400
    message = "You must specify at least one SLS project or OSS bucket."


class RepeatOssBucket(ApiError):
    code = "RepeatOssBucket"
    http_status = 400
    message = "The bucket is already used by another trail."


class TrailAlreadyExistsException(ApiError):
    code = "TrailAlreadyExistsException"
    http_status = 400
    message = "A trail with this name already exists."


class MaximumNumberOfOrganizationTrailExceeded(ApiError):
    code = "MaximumNumberOfOrganizationTrailExceeded"
    http_status = 400
    message = "Your account can create only one organization trail."


class NotAllowCreateOrganizationTrail(ApiError):
    code = "NotAllowCreateOrganizationTrail"
    http_status = 400
    message = "Your account is not allowed to create an organization trail."


class InsufficientBucketPolicyException(ApiError):
    code = "InsufficientBucketPolicyException"
    http_status = 403
    message = "ActionTrail is not allowed to write to the bucket."


class MaximumNumberOfTrailsExceededException(ApiError):
    code = "MaximumNumberOfTrailsExceededException"
    http_status = 403
    message = "The number of trails exceeds the upper limit (5)."


class BucketDoesNotExistException(ApiError):
    code = "BucketDoesNotExistException"
    http_status = 404
    message = "The bucket does not exist."


class TrailNotFoundException(ApiError):
    code = "TrailNotFoundException"
    http_status = 404
    message = "The trail does not exist."


class DeliveryHistoryJobNotFound(ApiError):
    code = "DeliveryHistoryJobNotFound"
    http_status = 404
    message = "The delivery history job does not exist."


class MaximumNumberOfDeliveryHistoryJobsExceeded(ApiError):
    code = "MaximumNumberOfDeliveryHistoryJobsExceeded"
    http_status = 403
    message = "Your account can have only one running delivery history job."


class DataEventSelectorNotFound(ApiError):
    code = "DataEventSelectorNotFound"
    http_status = 404
    message = "The trail has no data event selector."


# ------------------------------------------------------------------------- Insights business codes
# Codes the Insights operations name (docs/compatibility.md, "Insights"); messages are ours.


class InsightTypeNotValid(ApiError):
    code = "InsightTypeNotValid"
    http_status = 400
    message = "The specified InsightType is not valid."


class InsightTypeNotAvailable(ApiError):
    code = "InsightTypeNotAvailable"
    http_status = 400
    message = "The specified InsightType is not available."


class InvalidInsightSelectors(ApiError):
    code = "InvalidInsightSelectors"
    http_status = 400
    message = "The specified InsightSelectors is not valid."
