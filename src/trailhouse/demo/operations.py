"""What the generated traffic calls: regions, services, resource kinds, operations and their errors.

Immutable module constants; ``OPS`` lists every operation, ``op`` finds one by service and name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "ERROR_NO_PERMISSION",
    "GLOBAL_REGION",
    "KINDS",
    "OPS",
    "REGIONS",
    "REGION_CODES",
    "SERVICES",
    "Op",
    "ResourceKind",
    "Service",
    "errors_for",
    "op",
]

# (region, weight, the 3-character code Alibaba Cloud puts in resource IDs of that region)
REGIONS: tuple[tuple[str, float, str], ...] = (
    ("cn-hangzhou", 40, "bp1"),
    ("cn-shanghai", 18, "uf6"),
    ("cn-beijing", 12, "2ze"),
    ("cn-shenzhen", 8, "wz9"),
    ("cn-zhangjiakou", 4, "8vb"),
    ("cn-qingdao", 2, "m5e"),
    ("cn-hongkong", 5, "j6c"),
    ("ap-southeast-1", 5, "t4n"),
    ("ap-northeast-1", 1, "6we"),
    ("us-west-1", 2, "rj9"),
    ("eu-central-1", 2, "gw8"),
)
REGION_CODES: Mapping[str, str] = MappingProxyType({r: c for r, _, c in REGIONS} | {"me-east-1": "eb3"})
GLOBAL_REGION = "cn-hangzhou"  # where global (RAM, STS, IMS, CDN) events are recorded


@dataclass(frozen=True, slots=True)
class Service:
    name: str  # serviceName, e.g. "Ecs"
    api_version: str  # "" when the service's events carry no apiVersion (OSS)
    host: str  # endpoint; "{r}" is replaced by the region
    is_global: bool
    weight: float  # share of all API traffic
    console: str  # console host, the userAgent of console operations


@dataclass(frozen=True, slots=True)
class ResourceKind:
    acs_type: str  # key of referencedResources, value of resourceType
    param: str  # request parameter that names the resource


@dataclass(frozen=True, slots=True, eq=False)  # identity hashing: ops are unique and hashed per event
class Op:
    service: Service
    name: str
    rw: str  # "Read" or "Write"
    category: str  # "Management" or "Data"
    kinds: tuple[str, ...]  # resource kinds the call references
    args: tuple[tuple[str, str], ...]  # static request arguments
    weight: float  # relative frequency within its service
    creates: bool  # the first resource is created: its ID is in the response, not the request


SERVICES: Mapping[str, Service] = MappingProxyType(
    {
        s.name: s
        for s in (
            Service("Ecs", "2014-05-26", "ecs.{r}.aliyuncs.com", False, 30, "ecs.console.aliyun.com"),
            Service("Oss", "", "oss-{r}.aliyuncs.com", False, 24, "oss.console.aliyun.com"),
            Service("Ram", "2015-05-01", "ram.aliyuncs.com", True, 5, "ram.console.aliyun.com"),
            Service("Rds", "2014-08-15", "rds.{r}.aliyuncs.com", False, 7, "rdsnext.console.aliyun.com"),
            Service("Slb", "2014-05-15", "slb.{r}.aliyuncs.com", False, 5, "slb.console.aliyun.com"),
            Service("Vpc", "2016-04-28", "vpc.{r}.aliyuncs.com", False, 6, "vpc.console.aliyun.com"),
            Service("Kms", "2016-01-20", "kms.{r}.aliyuncs.com", False, 5, "kms.console.aliyun.com"),
            Service("Sts", "2015-04-01", "sts.aliyuncs.com", True, 3, "ram.console.aliyun.com"),
            Service(
                "Actiontrail",
                "2020-07-06",
                "actiontrail.{r}.aliyuncs.com",
                False,
                1.5,
                "actiontrail.console.aliyun.com",
            ),
            Service("Ims", "2019-08-15", "ims.aliyuncs.com", True, 1, "ram.console.aliyun.com"),
            Service(
                "R-kvstore",
                "2015-01-01",
                "r-kvstore.{r}.aliyuncs.com",
                False,
                3,
                "kvstore.console.aliyun.com",
            ),
            Service("Cdn", "2018-05-10", "cdn.aliyuncs.com", True, 2.5, "cdn.console.aliyun.com"),
            Service("Cs", "2015-12-15", "cs.{r}.aliyuncs.com", False, 4, "cs.console.aliyun.com"),
            Service("Fc", "2023-03-30", "fcv3.{r}.aliyuncs.com", False, 2, "fcnext.console.aliyun.com"),
            Service("Sls", "2020-12-30", "{r}.log.aliyuncs.com", False, 4, "sls.console.aliyun.com"),
        )
    }
)

KINDS: Mapping[str, ResourceKind] = MappingProxyType(
    {
        "ecs_instance": ResourceKind("ACS::ECS::Instance", "InstanceId"),
        "ecs_disk": ResourceKind("ACS::ECS::Disk", "DiskId"),
        "ecs_sg": ResourceKind("ACS::ECS::SecurityGroup", "SecurityGroupId"),
        "ecs_snapshot": ResourceKind("ACS::ECS::Snapshot", "SnapshotId"),
        "oss_bucket": ResourceKind("ACS::OSS::Bucket", "BucketName"),
        "oss_object": ResourceKind("ACS::OSS::Object", "ObjectName"),
        "ram_user": ResourceKind("ACS::RAM::User", "UserName"),
        "ram_role": ResourceKind("ACS::RAM::Role", "RoleName"),
        "ram_role_arn": ResourceKind("ACS::RAM::Role", "RoleArn"),
        "ram_policy": ResourceKind("ACS::RAM::Policy", "PolicyName"),
        "rds": ResourceKind("ACS::RDS::DBInstance", "DBInstanceId"),
        "slb": ResourceKind("ACS::SLB::LoadBalancer", "LoadBalancerId"),
        "vpc": ResourceKind("ACS::VPC::VPC", "VpcId"),
        "vsw": ResourceKind("ACS::VPC::VSwitch", "VSwitchId"),
        "eip": ResourceKind("ACS::VPC::EIP", "AllocationId"),
        "kms_key": ResourceKind("ACS::KMS::Key", "KeyId"),
        "kms_secret": ResourceKind("ACS::KMS::Secret", "SecretName"),
        "trail": ResourceKind("ACS::ActionTrail::Trail", "Name"),
        "redis": ResourceKind("ACS::KVSTORE::Instance", "InstanceId"),
        "cdn_domain": ResourceKind("ACS::CDN::Domain", "DomainName"),
        "cs_cluster": ResourceKind("ACS::CS::Cluster", "ClusterId"),
        "fc_function": ResourceKind("ACS::FC::Function", "FunctionName"),
        "sls_project": ResourceKind("ACS::SLS::Project", "ProjectName"),
        "sls_logstore": ResourceKind("ACS::SLS::LogStore", "LogstoreName"),
    }
)

# Per service: (eventName, relative weight, resource kinds, static args, flags). Flags: "d" = data
# event (OSS object access), "n" = creates its first resource. Reads dominate, as in real trails.
_P100 = {"PageSize": "100", "PageNumber": "1"}
_P50 = {"PageSize": "50", "PageNumber": "1"}
_OpRow = tuple[str, float, tuple[str, ...], dict[str, str], str]
_OP_TABLE: Mapping[str, tuple[_OpRow, ...]] = MappingProxyType(
    {
        "Ecs": (
            ("DescribeInstances", 40, (), _P100, ""),
            ("DescribeInstanceStatus", 12, (), _P50, ""),
            ("DescribeInstanceAttribute", 8, ("ecs_instance",), {}, ""),
            ("DescribeDisks", 8, (), _P100, ""),
            ("DescribeSecurityGroups", 6, (), _P50, ""),
            ("DescribeSecurityGroupAttribute", 4, ("ecs_sg",), {"Direction": "all"}, ""),
            ("DescribeImages", 5, (), {"ImageOwnerAlias": "self", "Status": "Available"}, ""),
            ("DescribeRegions", 4, (), {"AcceptLanguage": "en-US"}, ""),
            ("DescribeZones", 2, (), {"AcceptLanguage": "en-US"}, ""),
            ("DescribeSnapshots", 3, (), _P50, ""),
            ("DescribeNetworkInterfaces", 3, (), _P100, ""),
            ("StartInstance", 1.0, ("ecs_instance",), {}, ""),
            (
                "StopInstance",
                1.0,
                ("ecs_instance",),
                {"ForceStop": "false", "StoppedMode": "KeepCharging"},
                "",
            ),
            ("RebootInstance", 0.6, ("ecs_instance",), {"ForceStop": "false"}, ""),
            ("ModifyInstanceAttribute", 0.4, ("ecs_instance",), {"Description": "managed by terraform"}, ""),
            ("CreateSnapshot", 0.8, ("ecs_snapshot", "ecs_disk"), {"RetentionDays": "7"}, "n"),
            ("DeleteSnapshot", 0.5, ("ecs_snapshot",), {"Force": "false"}, ""),
            (
                "AuthorizeSecurityGroup",
                0.4,
                ("ecs_sg",),
                {
                    "IpProtocol": "tcp",
                    "PortRange": "443/443",
                    "SourceCidrIp": "0.0.0.0/0",
                    "Policy": "accept",
                },
                "",
            ),
            (
                "RevokeSecurityGroup",
                0.2,
                ("ecs_sg",),
                {"IpProtocol": "tcp", "PortRange": "22/22", "SourceCidrIp": "0.0.0.0/0"},
                "",
            ),
            (
                "RunInstances",
                0.3,
                ("ecs_instance",),
                {
                    "InstanceType": "ecs.g7.large",
                    "Amount": "1",
                    "ImageId": "aliyun_3_x64_20G_alibase_20231220.vhd",
                    "InternetChargeType": "PayByTraffic",
                    "SystemDisk.Category": "cloud_essd",
                },
                "n",
            ),
            (
                "CreateInstance",
                0.05,
                ("ecs_instance",),
                {"InstanceType": "ecs.g7.large", "ImageId": "aliyun_3_x64_20G_alibase_20231220.vhd"},
                "n",
            ),
            ("DeleteInstance", 0.2, ("ecs_instance",), {"Force": "true"}, ""),
            ("RenewInstance", 0.1, ("ecs_instance",), {"Period": "1", "PeriodUnit": "Month"}, ""),
            ("AttachDisk", 0.2, ("ecs_disk", "ecs_instance"), {"DeleteWithInstance": "true"}, ""),
            (
                "TagResources",
                0.4,
                ("ecs_instance",),
                {"ResourceType": "instance", "Tag.1.Key": "env", "Tag.1.Value": "prod"},
                "",
            ),
        ),
        "Oss": (
            ("ListBuckets", 14, (), {"max-keys": "1000"}, ""),
            ("GetBucketInfo", 8, ("oss_bucket",), {}, ""),
            ("GetBucketAcl", 4, ("oss_bucket",), {}, ""),
            ("GetBucketStat", 4, ("oss_bucket",), {}, ""),
            ("GetBucketLifecycle", 2, ("oss_bucket",), {}, ""),
            ("GetBucketPolicy", 2, ("oss_bucket",), {}, ""),
            ("PutBucketAcl", 0.3, ("oss_bucket",), {"x-oss-acl": "private"}, ""),
            ("PutBucketLifecycle", 0.3, ("oss_bucket",), {}, ""),
            ("PutBucket", 0.2, ("oss_bucket",), {"x-oss-acl": "private", "StorageClass": "Standard"}, ""),
            ("DeleteBucket", 0.05, ("oss_bucket",), {}, ""),
            ("GetObject", 30, ("oss_object",), {}, "d"),
            ("PutObject", 18, ("oss_object",), {"x-oss-storage-class": "Standard"}, "d"),
            ("HeadObject", 8, ("oss_object",), {}, "d"),
            ("GetObjectMeta", 2, ("oss_object",), {}, "d"),
            ("ListObjects", 6, ("oss_bucket",), {"prefix": "logs/", "max-keys": "100"}, "d"),
            ("DeleteObject", 2, ("oss_object",), {}, "d"),
            ("CopyObject", 0.5, ("oss_object",), {"x-oss-metadata-directive": "COPY"}, "d"),
        ),
        "Ram": (
            ("ListUsers", 6, (), {"MaxItems": "100"}, ""),
            ("GetUser", 5, ("ram_user",), {}, ""),
            ("ListRoles", 4, (), {"MaxItems": "100"}, ""),
            ("GetRole", 3, ("ram_role",), {}, ""),
            ("ListPolicies", 3, (), {"PolicyType": "System", "MaxItems": "100"}, ""),
            ("GetPolicy", 2, ("ram_policy",), {"PolicyType": "System"}, ""),
            ("ListAccessKeys", 3, ("ram_user",), {}, ""),
            ("ListPoliciesForUser", 3, ("ram_user",), {}, ""),
            ("ListGroups", 1, (), {"MaxItems": "100"}, ""),
            ("ListEntitiesForPolicy", 1, ("ram_policy",), {"PolicyType": "System"}, ""),
            ("CreateUser", 0.15, ("ram_user",), {"DisplayName": "created by terraform"}, ""),
            ("UpdateUser", 0.1, ("ram_user",), {"NewComments": "rotated"}, ""),
            ("CreateAccessKey", 0.15, ("ram_user",), {}, ""),
            ("DeleteAccessKey", 0.1, ("ram_user",), {}, ""),
            ("UpdateAccessKey", 0.08, ("ram_user",), {"Status": "Inactive"}, ""),
            ("AttachPolicyToUser", 0.2, ("ram_policy", "ram_user"), {"PolicyType": "System"}, ""),
            ("DetachPolicyFromUser", 0.08, ("ram_policy", "ram_user"), {"PolicyType": "System"}, ""),
            ("CreateRole", 0.05, ("ram_role",), {"Description": "workload role"}, ""),
            ("AttachPolicyToRole", 0.05, ("ram_policy", "ram_role"), {"PolicyType": "System"}, ""),
            ("AddUserToGroup", 0.05, ("ram_user",), {"GroupName": "developers"}, ""),
            (
                "CreateLoginProfile",
                0.05,
                ("ram_user",),
                {"PasswordResetRequired": "true", "MFABindRequired": "true"},
                "",
            ),
            ("DeleteUser", 0.03, ("ram_user",), {}, ""),
        ),
        "Ims": (
            ("GetUser", 2, ("ram_user",), {}, ""),
            ("ListUsers", 2, (), {"MaxItems": "100"}, ""),
            ("GetLoginProfile", 1, ("ram_user",), {}, ""),
            ("ListAccessKeys", 1, ("ram_user",), {}, ""),
            ("GetAccountSecurityPracticeReport", 0.5, (), {}, ""),
            ("GetSecurityPreference", 0.5, (), {}, ""),
            ("UpdateLoginProfile", 0.1, ("ram_user",), {"MFABindRequired": "true"}, ""),
            ("SetSecurityPreference", 0.05, (), {"EnableSaveMFATicket": "false"}, ""),
        ),
        "Sts": (
            ("GetCallerIdentity", 6, (), {}, ""),
            (
                "AssumeRole",
                4,
                ("ram_role_arn",),
                {"DurationSeconds": "3600", "RoleSessionName": "ci-session"},
                "",
            ),
        ),
        "Rds": (
            ("DescribeDBInstances", 10, (), {"PageSize": "30", "PageNumber": "1"}, ""),
            ("DescribeDBInstanceAttribute", 5, ("rds",), {}, ""),
            ("DescribeDBInstancePerformance", 3, ("rds",), {"Key": "MySQL_QPSTPS"}, ""),
            ("DescribeBackups", 3, ("rds",), {"BackupStatus": "Success"}, ""),
            ("DescribeSlowLogs", 2, ("rds",), {"SortKey": "TotalExecutionCounts"}, ""),
            ("DescribeDBInstanceIPArrayList", 2, ("rds",), {}, ""),
            ("DescribeParameters", 1, ("rds",), {}, ""),
            (
                "ModifySecurityIps",
                0.3,
                ("rds",),
                {"SecurityIps": "10.0.0.0/8", "DBInstanceIPArrayName": "default"},
                "",
            ),
            ("CreateBackup", 0.5, ("rds",), {"BackupMethod": "Physical"}, ""),
            ("RestartDBInstance", 0.1, ("rds",), {}, ""),
            (
                "ModifyDBInstanceSpec",
                0.1,
                ("rds",),
                {"DBInstanceClass": "mysql.n4.large.2c", "PayType": "Postpaid"},
                "",
            ),
            ("CreateAccount", 0.1, ("rds",), {"AccountName": "app_rw", "AccountType": "Normal"}, ""),
            ("ResetAccountPassword", 0.05, ("rds",), {"AccountName": "app_rw"}, ""),
        ),
        "Slb": (
            ("DescribeLoadBalancers", 8, (), _P50, ""),
            ("DescribeLoadBalancerAttribute", 4, ("slb",), {}, ""),
            ("DescribeHealthStatus", 6, ("slb",), {}, ""),
            ("DescribeVServerGroups", 2, ("slb",), {}, ""),
            ("SetBackendServers", 0.6, ("slb",), {}, ""),
            ("AddBackendServers", 0.5, ("slb", "ecs_instance"), {}, ""),
            ("RemoveBackendServers", 0.4, ("slb", "ecs_instance"), {}, ""),
            ("SetLoadBalancerStatus", 0.05, ("slb",), {"LoadBalancerStatus": "active"}, ""),
            (
                "CreateLoadBalancerHTTPSListener",
                0.05,
                ("slb",),
                {"ListenerPort": "443", "BackendServerPort": "8080", "Bandwidth": "-1"},
                "",
            ),
        ),
        "Vpc": (
            ("DescribeVpcs", 6, (), _P50, ""),
            ("DescribeVSwitches", 6, (), _P50, ""),
            ("DescribeEipAddresses", 4, (), _P50, ""),
            ("DescribeRouteTableList", 2, (), _P50, ""),
            ("DescribeNatGateways", 2, (), _P50, ""),
            ("DescribeVpcAttribute", 2, ("vpc",), {}, ""),
            (
                "AllocateEipAddress",
                0.2,
                ("eip",),
                {"Bandwidth": "5", "InternetChargeType": "PayByTraffic"},
                "n",
            ),
            ("AssociateEipAddress", 0.2, ("eip", "ecs_instance"), {"InstanceType": "EcsInstance"}, ""),
            ("UnassociateEipAddress", 0.1, ("eip", "ecs_instance"), {"InstanceType": "EcsInstance"}, ""),
            ("ReleaseEipAddress", 0.1, ("eip",), {}, ""),
            ("CreateVSwitch", 0.05, ("vsw", "vpc"), {"CidrBlock": "172.16.8.0/24"}, "n"),
            ("ModifyVpcAttribute", 0.05, ("vpc",), {"Description": "prod network"}, ""),
        ),
        "Kms": (
            ("Decrypt", 8, ("kms_key",), {"EncryptionContext": "{}"}, ""),
            ("GetSecretValue", 6, ("kms_secret",), {"VersionStage": "ACSCurrent"}, ""),
            ("GenerateDataKey", 3, ("kms_key",), {"KeySpec": "AES_256"}, ""),
            ("Encrypt", 2, ("kms_key",), {}, ""),
            ("DescribeKey", 1, ("kms_key",), {}, ""),
            ("ListKeys", 1, (), _P100, ""),
            ("ListSecrets", 1, (), _P100, ""),
            (
                "CreateKey",
                0.02,
                ("kms_key",),
                {"KeySpec": "Aliyun_AES_256", "KeyUsage": "ENCRYPT/DECRYPT"},
                "n",
            ),
            ("PutSecretValue", 0.1, ("kms_secret",), {"VersionId": "v2"}, ""),
            ("CreateSecret", 0.02, ("kms_secret",), {"VersionId": "v1", "SecretType": "Generic"}, ""),
            ("ScheduleKeyDeletion", 0.01, ("kms_key",), {"PendingWindowInDays": "7"}, ""),
        ),
        "Actiontrail": (
            ("LookupEvents", 5, (), {"MaxResults": "50"}, ""),
            ("DescribeTrails", 2, (), {"IncludeShadowTrails": "false"}, ""),
            ("GetTrailStatus", 2, ("trail",), {}, ""),
            ("UpdateTrail", 0.05, ("trail",), {"EventRW": "All", "TrailRegion": "All"}, ""),
            ("CreateTrail", 0.02, ("trail",), {"EventRW": "All", "TrailRegion": "All"}, ""),
            ("StartLogging", 0.03, ("trail",), {}, ""),
            ("StopLogging", 0.01, ("trail",), {}, ""),
            ("DeleteTrail", 0.01, ("trail",), {}, ""),
        ),
        "R-kvstore": (
            ("DescribeInstances", 6, (), {"PageSize": "30", "PageNumber": "1"}, ""),
            ("DescribeInstanceAttribute", 3, ("redis",), {}, ""),
            ("DescribeHistoryMonitorValues", 3, ("redis",), {"IntervalForHistory": "01m"}, ""),
            ("DescribeSecurityIps", 1, ("redis",), {}, ""),
            ("ModifySecurityIps", 0.2, ("redis",), {"SecurityIps": "10.0.0.0/8", "ModifyMode": "Cover"}, ""),
            ("RestartInstance", 0.05, ("redis",), {"EffectiveTime": "Immediately"}, ""),
            ("FlushInstance", 0.02, ("redis",), {}, ""),
        ),
        "Cdn": (
            ("DescribeUserDomains", 4, (), _P50, ""),
            ("DescribeDomainBpsData", 4, ("cdn_domain",), {"Interval": "300"}, ""),
            ("DescribeCdnDomainDetail", 2, ("cdn_domain",), {}, ""),
            ("RefreshObjectCaches", 2, ("cdn_domain",), {"ObjectType": "Directory"}, ""),
            ("PushObjectCache", 0.5, ("cdn_domain",), {"Area": "domestic"}, ""),
            (
                "SetCdnDomainSSLCertificate",
                0.05,
                ("cdn_domain",),
                {"SSLProtocol": "on", "CertType": "cas"},
                "",
            ),
        ),
        "Cs": (
            ("DescribeClustersV1", 5, (), {"page_size": "50", "page_number": "1"}, ""),
            ("DescribeClusterNodes", 4, ("cs_cluster",), {"pageSize": "100"}, ""),
            ("DescribeClusterDetail", 3, ("cs_cluster",), {}, ""),
            ("DescribeClusterUserKubeconfig", 2, ("cs_cluster",), {"PrivateIpAddress": "false"}, ""),
            ("ScaleOutCluster", 0.2, ("cs_cluster",), {"count": "2"}, ""),
            ("ModifyCluster", 0.1, ("cs_cluster",), {"deletion_protection": "true"}, ""),
            ("DeleteClusterNodes", 0.1, ("cs_cluster", "ecs_instance"), {"drain_node": "true"}, ""),
        ),
        "Fc": (
            ("InvokeFunction", 5, ("fc_function",), {"x-fc-invocation-type": "Async"}, ""),
            ("ListFunctions", 3, (), {"limit": "100"}, ""),
            ("GetFunction", 2, ("fc_function",), {}, ""),
            ("UpdateFunction", 0.3, ("fc_function",), {"memorySize": "512", "timeout": "60"}, ""),
            ("PublishFunctionVersion", 0.1, ("fc_function",), {"description": "release"}, ""),
            (
                "CreateFunction",
                0.05,
                ("fc_function",),
                {"runtime": "python3.10", "handler": "index.handler"},
                "",
            ),
        ),
        "Sls": (
            (
                "GetLogs",
                6,
                ("sls_project", "sls_logstore"),
                {"query": "* | select count(1) as pv", "line": "100"},
                "",
            ),
            ("ListProject", 3, (), {"size": "100"}, ""),
            ("ListLogStores", 3, ("sls_project",), {"size": "200"}, ""),
            ("GetProject", 2, ("sls_project",), {}, ""),
            ("GetLogStore", 2, ("sls_project", "sls_logstore"), {}, ""),
            ("CreateLogStore", 0.05, ("sls_project", "sls_logstore"), {"ttl": "30", "shardCount": "2"}, ""),
            ("UpdateLogStore", 0.05, ("sls_project", "sls_logstore"), {"ttl": "90"}, ""),
            ("CreateIndex", 0.03, ("sls_project", "sls_logstore"), {}, ""),
        ),
    }
)

_READ_PREFIXES = ("Describe", "List", "Get", "Query", "Check", "Head", "Lookup", "Search")
# Cryptographic and identity calls that change nothing; ActionTrail classifies them as reads.
_READ_NAMES = frozenset({"Decrypt", "Encrypt", "GenerateDataKey"})


def _rw(name: str) -> str:
    return "Read" if name.startswith(_READ_PREFIXES) or name in _READ_NAMES else "Write"


def _build_ops() -> tuple[Op, ...]:
    ops = []
    for svc_name, rows in _OP_TABLE.items():
        svc = SERVICES[svc_name]
        for name, weight, kinds, args, flags in rows:
            ops.append(
                Op(
                    svc,
                    name,
                    _rw(name),
                    "Data" if "d" in flags else "Management",
                    kinds,
                    tuple(args.items()),
                    weight,
                    "n" in flags,
                )
            )
    return tuple(ops)


OPS: tuple[Op, ...] = _build_ops()
_OPS_BY_NAME: Mapping[tuple[str, str], Op] = MappingProxyType({(o.service.name, o.name): o for o in OPS})


def op(service: str, name: str) -> Op:
    """The catalog operation ``name`` of ``service`` (e.g. ``op("Ram", "CreateUser")``)."""
    return _OPS_BY_NAME[(service, name)]


# (errorCode, errorMessage) by service family; NoPermission dominates, as in real trails.
ERROR_NO_PERMISSION: tuple[str, str] = (
    "NoPermission",
    "You are not authorized to do this action. You should be authorized by RAM.",
)
_FORBIDDEN_RAM = (
    "Forbidden.RAM",
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
)
_ERRORS_DEFAULT = (
    ERROR_NO_PERMISSION,
    ERROR_NO_PERMISSION,
    ERROR_NO_PERMISSION,
    _FORBIDDEN_RAM,
    _FORBIDDEN_RAM,
    ("InvalidParameter", "The specified parameter is not valid."),
    ("Throttling.User", "Request was denied due to user flow control."),
)
_ERRORS_INSTANCE = (
    ("IncorrectInstanceStatus", "The current status of the resource does not support this operation."),
    ("InvalidInstanceId.NotFound", "The specified InstanceId does not exist."),
)
_ERRORS_RAM = (
    ERROR_NO_PERMISSION,
    ERROR_NO_PERMISSION,
    ("EntityNotExist.User", "The user does not exist."),
    ("EntityAlreadyExists.User", "The user already exists."),
    ("Throttling.User", "Request was denied due to user flow control."),
)
_ERRORS_OSS = (
    ("AccessDenied", "You have no right to access this object because of bucket acl."),
    ("AccessDenied", "The bucket you access does not belong to you."),
    ("NoSuchKey", "The specified key does not exist."),
    ("NoSuchBucket", "The specified bucket does not exist."),
)


def errors_for(operation: Op) -> tuple[tuple[str, str], ...]:
    """The failures an operation plausibly returns."""
    name = operation.service.name
    if name in ("Ram", "Ims", "Sts"):
        return _ERRORS_RAM
    if name == "Oss":
        return _ERRORS_OSS
    if "ecs_instance" in operation.kinds and operation.rw == "Write":
        return _ERRORS_DEFAULT + _ERRORS_INSTANCE
    return _ERRORS_DEFAULT
