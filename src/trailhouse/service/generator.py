"""Seeded, deterministic generator of realistic ActionTrail events (spec §7).

Used by ``trailhouse demo`` (a few thousand events plus the leaked-key story in ``demo_story``) and by
the benchmarks (millions of events). Everything is derived from ``seed`` and ``end_ms`` (no global random
state, no clock), so the same parameters always give byte-identical output. The timestamps come from a
stream of their own: the content of the n-th event, its ID included, is the same whatever ``end_ms``.

The shape of the traffic is what matters for an audit store, so the generator models it:

* a small world per call: accounts, RAM users, AccessKeys, roles and sessions, an IP pool, and
  resource pools per (account, region, kind), all sized from ``count``;
* Zipf-like skew: a few AccessKeys carry most of the calls, a long tail of cold keys; each key has
  its own client (userAgent), home region, handful of APIs and slice of the IP pool;
* a daily rhythm (Beijing office hours, quieter weekends) over ``days`` days ending at ``end_ms``;
  events come out in ascending time order;
* a few percent of failed calls, console sign-ins and operations, STS sessions, service events.

The hot loop only picks from precomputed tables and fills a dict; strings are built once and cached.
"""

from __future__ import annotations

import base64
import bisect
import gzip as gzip_module
import hashlib
import itertools
import math
import random
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "OPS",
    "Op",
    "Service",
    "api_event",
    "event_id_for",
    "gateway_params",
    "generate_events",
    "op",
    "wire_time",
    "write_ndjson",
]

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MINUTE_MS = 60_000

# --------------------------------------------------------------------------------------------------
# Catalog: services, operations, resource kinds. Immutable module constants.
# --------------------------------------------------------------------------------------------------

# (region, weight, the 3-character code Alibaba Cloud puts in resource IDs of that region)
_REGIONS: tuple[tuple[str, float, str], ...] = (
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
REGION_CODES: Mapping[str, str] = MappingProxyType({r: c for r, _, c in _REGIONS} | {"me-east-1": "eb3"})
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


_SERVICES: Mapping[str, Service] = MappingProxyType(
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

_KINDS: Mapping[str, ResourceKind] = MappingProxyType(
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
        svc = _SERVICES[svc_name]
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
_NO_PERMISSION = (
    "NoPermission",
    "You are not authorized to do this action. You should be authorized by RAM.",
)
_FORBIDDEN_RAM = (
    "Forbidden.RAM",
    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
)
_ERRORS_DEFAULT = (
    _NO_PERMISSION,
    _NO_PERMISSION,
    _NO_PERMISSION,
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
    _NO_PERMISSION,
    _NO_PERMISSION,
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
ERROR_NO_PERMISSION: tuple[str, str] = _NO_PERMISSION


def _errors_for(operation: Op) -> tuple[tuple[str, str], ...]:
    """The failures an operation plausibly returns."""
    name = operation.service.name
    if name in ("Ram", "Ims", "Sts"):
        return _ERRORS_RAM
    if name == "Oss":
        return _ERRORS_OSS
    if "ecs_instance" in operation.kinds and operation.rw == "Write":
        return _ERRORS_DEFAULT + _ERRORS_INSTANCE
    return _ERRORS_DEFAULT


# Clients. Each AccessKey or role session sticks to one of these, like a real deployment does.
_SDK_AGENTS = (
    "AlibabaCloud (Linux; x86_64) Python/3.11.6 Core/2.14.0 python-requests/2.31.0",
    "AlibabaCloud (Linux; amd64) Go/1.21.5 Core/0.01 Tea/1.1.0",
    "AlibabaCloud (Mac OS X; x86_64) Java/1.8.0_252-b09 Core/4.4.6 HTTPClient/ApacheHttpClient",
    "AlibabaCloud (Linux; x64) Node.js/v18.19.0 Core/1.0.1 TeaDSL/1",
    "Terraform/1.6.6 (+https://www.terraform.io) terraform-provider-alicloud/1.214.1",
    "Terraform/1.5.7 (+https://www.terraform.io) terraform-provider-alicloud/1.209.0",
    "Aliyun-CLI-V3.0.190",
    "aliyun-sdk-java/3.17.4(Linux/5.10.134-15.al8.x86_64/amd64;1.8.0_372)",
    "aliyun-sdk-python/2.18.4(Linux/5.15.0-91-generic/x86_64;3.10.12)",
    "ossutil/v1.7.18 (Linux/5.10.134-16.al8.x86_64/x86_64;go1.20.4)",
)
_BROWSER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
BROWSER_AGENTS: tuple[str, ...] = _BROWSER_AGENTS

# First two octets of caller networks, weighted: Alibaba Cloud ECS ranges, Chinese ISPs, foreign clouds
# and VPC-internal addresses. The demo story's attacker ranges (185.220.x, 45.155.x) are not here.
_NETS: tuple[tuple[str, float], ...] = (
    ("47.96", 6),
    ("47.97", 5),
    ("47.98", 5),
    ("47.99", 3),
    ("47.100", 5),
    ("47.101", 3),
    ("47.102", 3),
    ("47.110", 3),
    ("47.111", 3),
    ("47.114", 3),
    ("47.116", 2),
    ("47.118", 2),
    ("47.74", 2),
    ("47.88", 2),
    ("39.96", 3),
    ("39.98", 3),
    ("39.105", 2),
    ("120.26", 3),
    ("120.27", 2),
    ("121.40", 2),
    ("121.41", 2),
    ("112.124", 3),
    ("116.62", 3),
    ("118.178", 2),
    ("101.132", 2),
    ("101.133", 2),
    ("114.55", 2),
    ("106.14", 2),
    ("115.236", 2),
    ("183.128", 2),
    ("183.136", 2),
    ("183.157", 2),
    ("223.104", 2),
    ("36.112", 2),
    ("60.191", 1),
    ("42.120", 2),
    ("140.205", 1),
    ("58.100", 1),
    ("61.164", 1),
    ("52.77", 1),
    ("35.220", 1),
    ("13.229", 1),
    ("34.92", 1),
    ("104.28", 1),
    ("8.210", 2),
    ("8.218", 2),
    ("10.10", 4),
    ("10.0", 3),
    ("10.18", 2),
    ("172.16", 2),
    ("172.20", 2),
    ("192.168", 1),
)

_SERVICE_USERS = (
    "terraform",
    "ci-runner",
    "monitoring",
    "log-shipper",
    "backup-svc",
    "k8s-autoscaler",
    "grafana-reader",
    "jenkins",
    "data-pipeline",
    "billing-export",
    "cmdb-sync",
    "deploy-bot",
    "argo-cd",
    "dns-updater",
    "cert-manager",
    "oss-sync",
    "etl-worker",
    "alerting",
    "security-scanner",
    "packer",
)
_GIVEN = (
    "wei",
    "fang",
    "jing",
    "lei",
    "min",
    "yan",
    "jun",
    "tao",
    "hui",
    "xin",
    "bo",
    "yu",
    "hao",
    "ling",
    "qiang",
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "ivan",
    "judy",
    "kevin",
)
_FAMILY = (
    "wang",
    "li",
    "zhang",
    "liu",
    "chen",
    "yang",
    "huang",
    "zhao",
    "wu",
    "zhou",
    "xu",
    "sun",
    "ma",
    "zhu",
    "hu",
    "guo",
    "he",
    "lin",
    "luo",
    "gao",
    "smith",
    "jones",
    "brown",
    "miller",
    "davis",
)
_ROLES = (
    "k8s-node-role",
    "ecs-app-role",
    "AliyunCSManagedLogRole",
    "sso-admin",
    "readonly-auditor",
    "fc-exec-role",
    "ack-csi-role",
    "data-platform-role",
    "cross-account-ops",
    "AliyunCSManagedCmsRole",
    "AliyunServiceRoleForAutoScaling",
    "oos-automation",
    "bastion-role",
)
_ALIASES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "soylent")
_POLICIES = (
    "AliyunECSReadOnlyAccess",
    "AliyunOSSFullAccess",
    "AliyunOSSReadOnlyAccess",
    "AliyunRDSFullAccess",
    "AliyunVPCReadOnlyAccess",
    "AliyunLogFullAccess",
    "AliyunKMSCryptoUserAccess",
    "ReadOnlyAccess",
    "AliyunCSFullAccess",
    "AliyunActionTrailFullAccess",
    "AliyunECSFullAccess",
    "AliyunSLBFullAccess",
)
_NAME_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "oss_bucket": (
            "logs",
            "backup",
            "static",
            "assets",
            "uploads",
            "data-lake",
            "ml-datasets",
            "artifacts",
            "invoices",
            "media",
            "exports",
            "archive",
            "web",
            "reports",
        ),
        "kms_secret": (
            "db/password",
            "api/payment-key",
            "registry-token",
            "smtp/password",
            "jwt-signing-key",
            "redis/auth",
            "webhook-secret",
            "oauth/client-secret",
        ),
        "trail": ("default-trail", "security-audit", "org-trail"),
        "cdn_domain": ("static", "img", "cdn", "download", "assets", "video", "www"),
        "fc_function": (
            "image-resize",
            "thumbnail",
            "log-forwarder",
            "webhook-handler",
            "nightly-report",
            "order-events",
            "cert-renew",
            "pdf-render",
        ),
        "sls_project": ("k8s-log", "app-logs", "audit", "nginx", "actiontrail"),
        "sls_logstore": ("nginx-access", "app-error", "audit-events", "k8s-events", "slowlog", "ingress"),
    }
)
_ENVS = ("prod", "staging", "dev")
_OBJECT_DIRS = (
    "logs/2024/",
    "backup/mysql/",
    "uploads/images/",
    "static/js/",
    "exports/reports/",
    "datasets/train/",
    "releases/",
)
_OBJECT_EXTS = (".gz", ".tar.gz", ".jpg", ".js", ".csv", ".parquet", ".zip")
_ID_PREFIXES: Mapping[str, str] = MappingProxyType(
    {
        "ecs_instance": "i-",
        "ecs_disk": "d-",
        "ecs_sg": "sg-",
        "ecs_snapshot": "s-",
        "rds": "rm-",
        "slb": "lb-",
        "vpc": "vpc-",
        "vsw": "vsw-",
        "eip": "eip-",
        "redis": "r-",
    }
)
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# Relative activity per Beijing-time hour (UTC+8): office hours peak, a batch-job floor at night.
_HOURLY = (
    0.25,
    0.2,
    0.3,
    0.2,
    0.15,
    0.15,
    0.2,
    0.35,
    0.6,
    1.0,
    1.2,
    1.15,
    0.8,
    0.95,
    1.2,
    1.25,
    1.15,
    1.0,
    0.8,
    0.6,
    0.55,
    0.5,
    0.45,
    0.35,
)
_WEEKEND = 0.45
_SECONDS = tuple(f"{s:02d}Z" for s in range(60))

# Mix of event kinds (cumulative thresholds).
_P_AK = 0.70
_P_STS = _P_AK + 0.17
_P_CONSOLE = _P_STS + 0.085
_P_SIGNIN = _P_CONSOLE + 0.03  # the remainder are AliyunServiceEvent

_KEY_ZIPF = 1.35  # top-3 AccessKeys carry ~45-70% of AccessKey calls depending on the pool size

# --------------------------------------------------------------------------------------------------
# Shared primitives (also used by demo_story)
# --------------------------------------------------------------------------------------------------


def guid(bits: int) -> str:
    """128 random bits as an uppercase GUID like ``239EB588-CD24-522E-B0B5-174A1A588BE0``."""
    h = f"{bits:032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def oss_request_id(bits: int) -> str:
    """128 random bits as an OSS request ID: 24 hex digits, e.g. ``6110E64B004C4034363CDC5E``."""
    return f"{bits >> 32:024X}"


def event_id_for(service: str, bits: int) -> str:
    """The eventId (= requestId) of an API call: OSS has its own request ID format."""
    return oss_request_id(bits) if service == "Oss" else guid(bits)


def signin_id(bits: int, t: int) -> str:
    """Sign-in events use IDs like ``96.227_1606286128938_2847`` (spec §7): a host, the time, a counter."""
    return f"{(bits >> 8 & 0xFF) or 1}.{bits & 0xFF}_{t}_{(bits >> 16) % 9000 + 1000}"


def wire_time(ms: int) -> str:
    """Epoch milliseconds to ``yyyy-MM-ddTHH:mm:ssZ`` (UTC)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def random_key_id(rng: random.Random, prefix: str = "LTAI5t", length: int = 24) -> str:
    """An AccessKey ID like ``LTAI5tAbC...`` (24 characters; STS tokens are longer)."""
    return prefix + "".join(rng.choices(_KEY_CHARS, k=length - len(prefix)))


def host_for(svc: Service, region: str) -> str:
    return svc.host.replace("{r}", region)


def api_event(
    *,
    event_id: str,
    event_time: str,
    operation: Op,
    region: str,
    params: dict[str, Any],
    identity: dict[str, Any],
    ip: str,
    user_agent: str,
    resources: Sequence[tuple[str, str]] = (),
    error: tuple[str, str] | None = None,
    response: dict[str, Any] | None = None,
    event_type: str = "ApiCall",
    source: str | None = None,
) -> dict[str, Any]:
    """One event in the §7 structure. ``resources`` are (kind, name) pairs; ``params`` are complete.

    Slow-path helper for hand-written events (the demo story); ``_CallBuilder`` makes the same shape fast.
    """
    svc = operation.service
    acs_region = GLOBAL_REGION if svc.is_global else region
    event: dict[str, Any] = {
        "eventId": event_id,
        "eventVersion": 1,
        "eventTime": event_time,
        "eventName": operation.name,
        "eventSource": source or host_for(svc, acs_region),
        "eventType": event_type,
        "eventRW": operation.rw,
        "eventCategory": operation.category,
        "serviceName": svc.name,
    }
    if svc.api_version:
        event["apiVersion"] = svc.api_version
    event["acsRegion"] = acs_region
    event["isGlobal"] = svc.is_global
    event["requestId"] = event_id
    event["requestParameters"] = params
    if response is not None:
        event["responseElements"] = response
    if resources:
        refs: dict[str, list[str]] = {}
        for kind, name in resources:
            refs.setdefault(_KINDS[kind].acs_type, []).append(name)
        event["referencedResources"] = refs
        if len(resources) == 1:
            event["resourceType"] = _KINDS[resources[0][0]].acs_type
            event["resourceName"] = resources[0][1]
    if error is not None:
        event["errorCode"], event["errorMessage"] = error
    event["sourceIpAddress"] = ip
    event["userAgent"] = user_agent
    event["userIdentity"] = identity
    event["recipientAccountId"] = identity["accountId"]
    event["additionalEventData"] = {"Scheme": "https", "CallerBid": "26842"}
    return event


def gateway_params(operation: Op, region: str, request_id: str, source: str | None = None) -> dict[str, Any]:
    """The keys the API gateway adds to every recorded request (spec §7, requestParameters).

    ``source`` is the host that served the call when it differs from the service endpoint (OSS buckets).
    """
    host = host_for(operation.service, GLOBAL_REGION if operation.service.is_global else region)
    return {
        "AcsHost": host,
        "HostId": source or host,
        "AcsProduct": operation.service.name,
        "RegionId": region,
        "RequestId": request_id,
    }


# --------------------------------------------------------------------------------------------------
# The world: accounts, principals, keys, sessions, IPs and resources (built per call from the seed)
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _User:
    name: str
    principal_id: str
    human: bool
    mfa: bool


@dataclass(slots=True)
class _Account:
    index: int
    account_id: str
    alias: str
    region: str
    users: list[_User] = field(default_factory=list)
    roles: list[tuple[str, str]] = field(default_factory=list)  # (role name, role ID)
    office_ips: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Actor:
    """Something that makes calls: an AccessKey, a role session or a console user."""

    account: _Account
    identity: dict[str, Any]  # userIdentity without the per-call parts (STS key, session context)
    user_agent: str
    region: str
    ops: list[Op]
    op_cum: list[float]
    ip_off: int
    ip_span: int
    error_rate: float
    mfa: bool = False


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _cum(weights: Iterable[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def _zipf_cum(n: int, s: float) -> list[float]:
    return _cum(1.0 / (i + 1) ** s for i in range(n))


def _numbered(names: Sequence[str], i: int) -> str:
    """The i-th name, cycling through ``names`` with a numeric suffix once they run out."""
    base = names[i % len(names)]
    return base if i < len(names) else f"{base}-{i // len(names) + 1}"


def _pick(rng: random.Random, items: Sequence[Any], cum: list[float]) -> Any:
    return items[bisect.bisect_right(cum, rng.random() * cum[-1])]


class _World:
    """Everything the hot loop picks from, built once per ``generate_events`` call."""

    def __init__(self, rng: random.Random, seed: int, count: int, account_ids: Sequence[str]) -> None:
        self.rng = rng
        self.seed = seed
        self.ip_count = _clamp(count // 20, 64, 50_000)
        self.key_count = _clamp(count // 100, 12, 5_000)
        self.pool_size = _clamp(count // 20_000, 4, 300)
        self.object_pool_size = _clamp(count // 500, 20, 5_000)
        self.ips = self._ip_pool()
        self.regions = [r for r, _, _ in _REGIONS]
        self.region_cum = _cum(w for _, w, _ in _REGIONS)
        self.services = list(_SERVICES.values())
        self.service_cum = _cum(s.weight for s in self.services)
        self.ops_by_service = {s.name: [o for o in OPS if o.service is s] for s in self.services}
        self.op_cum_by_service = {k: _cum(o.weight for o in v) for k, v in self.ops_by_service.items()}
        self.account_count = len(account_ids)
        self.accounts = [self._account(i, a) for i, a in enumerate(account_ids)]
        self.ip_cursor = 0
        self.keys = self._keys()
        self.key_cum = _zipf_cum(len(self.keys), _KEY_ZIPF)
        self.sessions = self._sessions()
        self.session_cum = _zipf_cum(len(self.sessions), 1.2)
        self.humans = self._humans()
        self.human_cum = _zipf_cum(len(self.humans), 1.0)
        self.pools: dict[tuple[int, str, str], list[str]] = {}

    # -- IPs ---------------------------------------------------------------------------------------

    def _ip_pool(self) -> list[str]:
        # Blocks of addresses share a /16, so a key's slice of the pool looks like one fleet or office.
        rng, nets, cum = self.rng, [n for n, _ in _NETS], _cum(w for _, w in _NETS)
        seen: set[str] = set()
        ips: list[str] = []
        while len(ips) < self.ip_count:
            net = _pick(rng, nets, cum)
            for _ in range(32):
                ip = f"{net}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                if ip not in seen:
                    seen.add(ip)
                    ips.append(ip)
        return ips[: self.ip_count]

    def _public_ip(self) -> int:
        """Index of a random public address of the pool (browsers are not inside a VPC)."""
        while True:
            index = self.rng.randrange(self.ip_count)
            if not self.ips[index].startswith(("10.", "172.", "192.168.")):
                return index

    def _ip_slice(self, share: float) -> tuple[int, int]:
        # Spans proportional to traffic make every IP of the pool see a similar number of calls.
        span = _clamp(round(share * self.ip_count), 1, self.ip_count)
        off = self.ip_cursor
        self.ip_cursor = (self.ip_cursor + span) % self.ip_count
        return off, span

    # -- principals --------------------------------------------------------------------------------

    def _account(self, index: int, account_id: str) -> _Account:
        rng = self.rng
        home = rng.random() < 0.5 or index == 0
        region = "cn-hangzhou" if home else _pick(rng, self.regions, self.region_cum)
        acct = _Account(index, account_id, _numbered(_ALIASES, index), region)
        # Enough users for the keys at two keys per user at most (the RAM limit), about 30 % automation.
        n_users = max(8, math.ceil(self.key_count / 1.4 / self.account_count))
        n_service = max(3, n_users * 3 // 10)
        names = [_numbered(_SERVICE_USERS, i) for i in range(n_service)]
        people = [f"{g}.{f}" for g in _GIVEN for f in _FAMILY]
        rng.shuffle(people)
        names += [_numbered(people, i) for i in range(n_users - n_service)]
        for i, name in enumerate(names):
            acct.users.append(
                _User(
                    name, "2" + "".join(rng.choices("0123456789", k=17)), i >= n_service, rng.random() < 0.6
                )
            )
        n_roles = _clamp(self.key_count // 20, 3, 60)
        for i in range(n_roles):
            acct.roles.append((_numbered(_ROLES, i), "3" + "".join(rng.choices("0123456789", k=17))))
        acct.office_ips = [self._public_ip() for _ in range(3)]
        return acct

    def _op_profile(self, breadth: int) -> tuple[list[Op], list[float]]:
        # A client talks to a few services and a handful of their APIs, reads far more than writes.
        rng = self.rng
        services: list[Service] = []
        for _ in range(breadth * 2):
            svc = _pick(rng, self.services, self.service_cum)
            if svc not in services:
                services.append(svc)
            if len(services) == breadth:
                break
        ops: list[Op] = []
        for svc in services:
            candidates, cum = self.ops_by_service[svc.name], self.op_cum_by_service[svc.name]
            for _ in range(rng.randint(2, 6)):
                candidate = _pick(rng, candidates, cum)
                if candidate not in ops:
                    ops.append(candidate)
        weights = [o.weight * o.service.weight * rng.uniform(0.5, 1.5) for o in ops]
        return ops, _cum(weights)

    def _keys(self) -> list[_Actor]:
        rng, n = self.rng, self.key_count
        shares = [1.0 / (i + 1) ** _KEY_ZIPF for i in range(n)]
        total = sum(shares)
        # Top keys belong to automation; the long tail is spread over everyone, at most 2 keys per user
        # (the RAM limit), plus one forgotten root key per account somewhere in the cold half.
        automation = [(a, u) for a in self.accounts for u in a.users if not u.human]
        everyone = [(a, u) for a in self.accounts for u in a.users]
        rng.shuffle(automation)
        used: dict[tuple[int, str], int] = {}
        root_ranks = {rng.randrange(n // 2, n): a for a in self.accounts}
        keys: list[_Actor] = []
        for rank in range(n):
            if rank in root_ranks:
                acct = root_ranks[rank]
                identity = {
                    "type": "root-account",
                    "accountId": acct.account_id,
                    "principalId": acct.account_id,
                    "userName": "root",
                }
            else:
                if rank < len(automation):
                    acct, user = automation[rank]
                else:
                    while True:
                        acct, user = everyone[rng.randrange(len(everyone))]
                        if used.get((acct.index, user.name), 0) < 2:
                            break
                used[(acct.index, user.name)] = used.get((acct.index, user.name), 0) + 1
                identity = {
                    "type": "ram-user",
                    "accountId": acct.account_id,
                    "principalId": user.principal_id,
                    "userName": user.name,
                }
            identity["accessKeyId"] = random_key_id(rng, "LTAI5t" if rng.random() < 0.8 else "LTAI4G")
            ops, cum = self._op_profile(rng.randint(3, 5) if rank < 10 else rng.randint(1, 3))
            off, span = self._ip_slice(_P_AK * shares[rank] / total)
            region = acct.region if rng.random() < 0.7 else _pick(rng, self.regions, self.region_cum)
            # A few cold keys belong to misconfigured jobs that fail a lot.
            error_rate = 0.3 if rank >= 10 and rng.random() < 0.03 else 0.02
            agent = rng.choice(_SDK_AGENTS)
            keys.append(_Actor(acct, identity, agent, region, ops, cum, off, span, error_rate))
        return keys

    def _sessions(self) -> list[_Actor]:
        rng = self.rng
        sessions: list[_Actor] = []
        for acct in self.accounts:
            for role, role_id in acct.roles:
                for _ in range(rng.randint(1, 4)):
                    if role.startswith(("k8s", "ecs", "ack", "Aliyun")):
                        name = "i-" + REGION_CODES[acct.region] + "".join(rng.choices(_ALNUM, k=17))
                    elif role.startswith(("sso", "readonly", "bastion")):
                        user = rng.choice(acct.users)
                        name = user.name
                    else:
                        name = f"{role.split('-')[0]}-{rng.randrange(10**9, 10**10)}"
                    identity = {
                        "type": "assumed-role",
                        "accountId": acct.account_id,
                        "principalId": f"{role_id}:{name}",
                        "userName": f"{role}:{name}",
                    }
                    ops, cum = self._op_profile(rng.randint(1, 3))
                    sessions.append(
                        _Actor(acct, identity, rng.choice(_SDK_AGENTS), acct.region, ops, cum, 0, 1, 0.02)
                    )
        shares = [1.0 / (i + 1) ** 1.2 for i in range(len(sessions))]
        total = sum(shares)
        for actor, share in zip(sessions, shares, strict=True):
            actor.ip_off, actor.ip_span = self._ip_slice((_P_STS - _P_AK) * share / total)
        return sessions

    def _humans(self) -> list[_Actor]:
        rng = self.rng
        humans: list[_Actor] = []
        for acct in self.accounts:
            people = [u for u in acct.users if u.human][:40]
            principals = [(u.name, u.principal_id, u.mfa) for u in people] + [("root", acct.account_id, True)]
            for name, pid, mfa in principals:
                identity = {
                    "type": "root-account" if name == "root" else "ram-user",
                    "accountId": acct.account_id,
                    "principalId": pid,
                    "userName": name,
                }
                ops, cum = self._op_profile(rng.randint(2, 4))
                # Office IPs most of the time, a home IP now and then.
                ip = rng.choice(acct.office_ips) if rng.random() < 0.7 else self._public_ip()
                humans.append(
                    _Actor(
                        acct, identity, rng.choice(_BROWSER_AGENTS), acct.region, ops, cum, ip, 1, 0.03, mfa
                    )
                )
        return humans

    # -- resources ---------------------------------------------------------------------------------

    def resource(self, acct: _Account, region: str, kind: str) -> str:
        key = (acct.index, region, kind)
        pool = self.pools.get(key)
        if pool is None:
            pool = self.pools[key] = self._resource_pool(acct, region, kind)
        r = self.rng.random()
        return pool[int(r * r * len(pool))]  # popular resources first

    def _resource_pool(self, acct: _Account, region: str, kind: str) -> list[str]:
        rng, n = self.rng, self.pool_size
        code = REGION_CODES.get(region, "bp1")
        prefix = _ID_PREFIXES.get(kind)
        if prefix is not None:
            return [prefix + code + "".join(rng.choices(_ALNUM, k=17)) for _ in range(n)]
        if kind == "ram_user":
            return [u.name for u in acct.users[: n * 4]]
        if kind == "ram_role":
            return [r for r, _ in acct.roles]
        if kind == "ram_role_arn":
            return [f"acs:ram::{acct.account_id}:role/{r.lower()}" for r, _ in acct.roles]
        if kind == "ram_policy":
            return list(_POLICIES)
        if kind == "kms_key":
            return [str(_uuid(rng)) for _ in range(n)]
        if kind == "cs_cluster":
            return ["c" + f"{rng.getrandbits(128):032x}" for _ in range(n)]
        if kind == "oss_object":
            return [
                f"{self.resource(acct, region, 'oss_bucket')}/{rng.choice(_OBJECT_DIRS)}"
                f"{rng.choice(_GIVEN)}-{rng.randrange(100000)}{rng.choice(_OBJECT_EXTS)}"
                for _ in range(self.object_pool_size)
            ]
        words = _NAME_WORDS[kind]
        if kind == "oss_bucket":
            names = [
                f"{acct.alias}-{e}-{w}" + ("" if region == acct.region else f"-{region}")
                for w in words
                for e in _ENVS
            ]
        elif kind == "cdn_domain":
            names = [f"{w}.{acct.alias}.com" for w in words]
        elif kind == "kms_secret":
            names = [f"{e}/{w}" for w in words for e in _ENVS]
        elif kind == "sls_project":
            names = [f"{acct.alias}-{w}-{region}" for w in words]
        else:
            names = list(words)
        rng.shuffle(names)
        return names[:n]


def _uuid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# --------------------------------------------------------------------------------------------------
# Timeline
# --------------------------------------------------------------------------------------------------


def _slots(rng: random.Random, count: int, end_ms: int, days: int) -> list[tuple[int, int, int]]:
    """(start, end, events) per UTC hour of the window, the counts following the daily rhythm.

    Largest-remainder allocation makes the counts sum to exactly ``count``.
    """
    start = end_ms - days * DAY_MS
    edges = [start, *range((start // HOUR_MS + 1) * HOUR_MS, end_ms, HOUR_MS), end_ms]
    bounds = list(itertools.pairwise(edges))
    weights = []
    for lo, hi in bounds:
        local = lo + 8 * HOUR_MS  # Beijing time
        weekday = (local // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        w = _HOURLY[(local // HOUR_MS) % 24] * (_WEEKEND if weekday >= 5 else 1.0)
        weights.append(w * (hi - lo) / HOUR_MS * rng.uniform(0.8, 1.2))
    total = sum(weights)
    exact = [count * w / total for w in weights]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return [(lo, hi, k) for (lo, hi), k in zip(bounds, counts, strict=True) if k]


# --------------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------------

_SERVICE_EVENTS = (  # what Alibaba Cloud itself does to your resources (AliyunServiceEvent)
    ("Ecs", "CreateSnapshot", "ecs_disk"),
    ("Ecs", "RenewInstance", "ecs_instance"),
    ("Rds", "CreateBackup", "rds"),
    ("Kms", "PutSecretValue", "kms_secret"),
)


def _sts_token(seed: int, session: int, issued_ms: int) -> str:
    """The STS AccessKey ID of a session's token issued at ``issued_ms``.

    Hashed rather than drawn from the generator's stream, which must not depend on the time slots.
    """
    digest = hashlib.blake2b(f"{seed}:{session}:{issued_ms}".encode(), digest_size=18).digest()
    return "STS.NU" + base64.b64encode(digest, altchars=b"xZ").decode()[:23]


def _account_ids(rng: random.Random, accounts: int, account_ids: Sequence[str] | None) -> list[str]:
    if account_ids is not None:
        return list(account_ids)
    ids: list[str] = []
    while len(ids) < accounts:
        candidate = str(rng.randrange(10**15, 2 * 10**15))
        if candidate not in ids:
            ids.append(candidate)
    return ids


def generate_events(
    *,
    seed: int,
    count: int,
    end_ms: int,
    days: int = 30,
    accounts: int = 3,
    account_ids: Sequence[str] | None = None,
    error_rate: float = 0.03,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` realistic events in ascending eventTime within ``[end_ms - days, end_ms)``.

    ``account_ids`` fixes the account IDs (its length then wins over ``accounts``). ``error_rate``
    scales the share of failed calls (the default gives about 3-4 %).
    """
    if count < 0 or days <= 0:
        raise ValueError("count must be >= 0 and days > 0")
    rng = random.Random(seed)
    world = _World(rng, seed, count, _account_ids(rng, accounts, account_ids))
    # Times come from their own stream, so the content of the n-th event (its ID included) does not
    # depend on end_ms: loading the demo again later finds duplicates instead of doubling the data.
    clock = random.Random(f"trailhouse-times:{seed}")
    return _events(world, _slots(clock, count, end_ms, days), error_rate / 0.03, clock)


def _events(
    world: _World, slots: list[tuple[int, int, int]], error_scale: float, clock: random.Random
) -> Iterator[dict[str, Any]]:
    """The hot loop: pick who calls (an AccessKey, a role session or a console user), then build the call."""
    rng = world.rng
    random_, id_bits, bisect_right = rng.random, rng.getrandbits, bisect.bisect_right
    keys, key_cum, key_total = world.keys, world.key_cum, world.key_cum[-1]
    sessions, session_cum, session_total = world.sessions, world.session_cum, world.session_cum[-1]
    humans, human_cum, human_total = world.humans, world.human_cum, world.human_cum[-1]
    ips, ip_count = world.ips, world.ip_count
    build = _CallBuilder(world, error_scale)
    minute, prefix = -1, ""
    for lo, hi, k in slots:
        times = sorted([lo + int(clock.random() * (hi - lo)) for _ in range(k)])
        slot_time = wire_time(lo)  # creationDate of the STS tokens and console sessions of this hour
        sts_tokens: dict[int, str] = {}  # STS tokens last an hour: one per session per slot
        for t in times:
            m = t // MINUTE_MS
            if m != minute:
                minute, prefix = m, time.strftime("%Y-%m-%dT%H:%M:", time.gmtime(m * 60))
            event_time = prefix + _SECONDS[(t // 1000) % 60]
            bits = id_bits(128)
            r = random_()
            if r < _P_AK:
                actor = keys[bisect_right(key_cum, random_() * key_total)]
                u = random_()
                ip = ips[(actor.ip_off + int(u * u * actor.ip_span)) % ip_count]
                yield build(actor, actor.identity.copy(), ip, actor.user_agent, "ApiCall", event_time, bits)
            elif r < _P_STS:
                index = bisect_right(session_cum, random_() * session_total)
                actor = sessions[index]
                token = sts_tokens.get(index)
                if token is None:
                    token = sts_tokens[index] = _sts_token(world.seed, index, lo)
                identity = actor.identity.copy()
                identity["accessKeyId"] = token
                identity["sessionContext"] = _session(False, slot_time)
                u = random_()
                ip = ips[(actor.ip_off + int(u * u * actor.ip_span)) % ip_count]
                yield build(actor, identity, ip, actor.user_agent, "ApiCall", event_time, bits)
            elif r < _P_CONSOLE:
                actor = humans[bisect_right(human_cum, random_() * human_total)]
                identity = actor.identity.copy()
                identity["sessionContext"] = _session(actor.mfa, slot_time)
                # Most console pages call the same OpenAPI; buy pages and a few consoles log ConsoleOperation.
                event_type = "ConsoleOperation" if random_() < 0.3 else "ApiCall"
                yield build(actor, identity, ips[actor.ip_off], None, event_type, event_time, bits)
            elif r < _P_SIGNIN:
                actor = humans[bisect_right(human_cum, random_() * human_total)]
                yield _signin_event(world, actor, t, event_time, bits)
            else:
                yield _service_event(world, event_time, bits)


# (eventSource, base requestParameters, acsRegion, possible errors) of an operation in a region
_Context = tuple[str, dict[str, Any], str, tuple[tuple[str, str], ...]]


def _session(mfa: bool, created: str) -> dict[str, Any]:
    """userIdentity.sessionContext of console sessions and STS tokens (spec §7)."""
    return {"attributes": {"mfaAuthenticated": "true" if mfa else "false", "creationDate": created}}


class _CallBuilder:
    """Builds the event of one API call; per (operation, region) strings and dicts are made once."""

    def __init__(self, world: _World, error_scale: float) -> None:
        self.world = world
        self.error_scale = error_scale
        self.contexts: dict[tuple[Op, str], _Context] = {}

    def _context(self, operation: Op, region: str) -> _Context:
        svc = operation.service
        acs_region = GLOBAL_REGION if svc.is_global else region
        host = host_for(svc, acs_region)
        base = {"AcsHost": host, "HostId": host, "AcsProduct": svc.name, "RegionId": region}
        base.update(operation.args)
        ctx = self.contexts[(operation, region)] = (host, base, acs_region, _errors_for(operation))
        return ctx

    def __call__(
        self,
        actor: _Actor,
        identity: dict[str, Any],
        ip: str,
        user_agent: str | None,
        event_type: str,
        event_time: str,
        bits: int,
    ) -> dict[str, Any]:
        world = self.world
        random_ = world.rng.random
        operation = actor.ops[bisect.bisect_right(actor.op_cum, random_() * actor.op_cum[-1])]
        svc = operation.service
        region = actor.region
        if random_() >= 0.85:
            region = world.regions[bisect.bisect_right(world.region_cum, random_() * world.region_cum[-1])]
        ctx = self.contexts.get((operation, region)) or self._context(operation, region)
        host, base, acs_region, errors = ctx
        acct = actor.account
        event_id = event_id_for(svc.name, bits)
        params = base.copy()
        params["RequestId"] = event_id
        if identity["type"] == "assumed-role":
            params["stsTokenPrincipalName"] = identity["userName"].split(":", 1)[1]
        event: dict[str, Any] = {
            "eventId": event_id,
            "eventVersion": 1,
            "eventTime": event_time,
            "eventName": operation.name,
            "eventSource": host,
            "eventType": event_type,
            "eventRW": operation.rw,
            "eventCategory": operation.category,
            "serviceName": svc.name,
            "apiVersion": svc.api_version,
            "acsRegion": acs_region,
            "isGlobal": svc.is_global,
            "requestId": event_id,
            "requestParameters": params,
        }
        if not svc.api_version:
            del event["apiVersion"]
        failed = random_() < actor.error_rate * self.error_scale
        response: dict[str, Any] | None = None
        if operation.rw == "Write" and not failed:
            response = {"RequestId": event_id}
        kinds = operation.kinds
        if kinds:
            refs: dict[str, list[str]] = {}
            for i, kind in enumerate(kinds):
                name = world.resource(acct, acs_region, kind)
                spec = _KINDS[kind]
                if i == 0 and operation.creates:  # a new resource: its ID is in the response
                    if response is not None:
                        response[spec.param] = name
                else:
                    params[spec.param] = name
                refs.setdefault(spec.acs_type, []).append(name)
            if kinds[0] == "oss_object":
                bucket, _, obj = refs["ACS::OSS::Object"][0].partition("/")
                params["BucketName"], params["ObjectName"] = bucket, obj
                event["eventSource"] = params["HostId"] = f"{bucket}.{host}"
            elif kinds[0] == "oss_bucket":
                event["eventSource"] = params["HostId"] = f"{params['BucketName']}.{host}"
            if not (operation.creates and failed):  # a failed creation references nothing
                event["referencedResources"] = refs
                if len(kinds) == 1:
                    event["resourceType"] = _KINDS[kinds[0]].acs_type
                    event["resourceName"] = name
        if response is not None:
            event["responseElements"] = response
        if failed:
            event["errorCode"], event["errorMessage"] = errors[int(random_() * len(errors))]
        event["sourceIpAddress"] = ip
        event["userAgent"] = user_agent or svc.console
        event["userIdentity"] = identity
        if ip[:3] == "10." or ip[:4] == "172.":  # callers inside a VPC are recorded with it
            event["vpcId"] = world.resource(acct, acs_region, "vpc")
        event["recipientAccountId"] = acct.account_id
        event["additionalEventData"] = {"Scheme": "https", "CallerBid": "26842"}
        return event


def _signin_event(world: _World, actor: _Actor, t: int, event_time: str, bits: int) -> dict[str, Any]:
    rng = world.rng
    signout = rng.random() < 0.1
    name = "ConsoleSignout" if signout else "ConsoleSignin"
    request_id = signin_id(bits, t)
    identity = actor.identity
    event: dict[str, Any] = {
        "eventId": request_id,
        "eventVersion": 1,
        "eventTime": event_time,
        "eventName": name,
        "eventSource": "signin.aliyun.com",
        "eventType": name,
        "eventRW": "Write",
        "eventCategory": "Management",
        "serviceName": "AasSub",
        "acsRegion": GLOBAL_REGION,
        "isGlobal": True,
        "requestId": request_id,
        "errorMessage": "success",
        "sourceIpAddress": world.ips[actor.ip_off],
        "userAgent": actor.user_agent,
        "userIdentity": identity.copy(),
        "recipientAccountId": actor.account.account_id,
    }
    if not signout:
        login = f"{identity['userName']}@{actor.account.alias}.onaliyun.com"
        if identity["type"] == "root-account":
            login = f"ops@{actor.account.alias}.com"
        mfa = "true" if actor.mfa else "false"
        event["additionalEventData"] = {
            "loginAccount": login,
            "isMFAChecked": mfa,
            "mfaChecked": mfa,
            "callbackUrl": "https://home.console.aliyun.com/",
        }
    return event


def _service_event(world: _World, event_time: str, bits: int) -> dict[str, Any]:
    rng = world.rng
    acct = world.accounts[rng.randrange(len(world.accounts))]
    svc_name, name, kind = _SERVICE_EVENTS[rng.randrange(len(_SERVICE_EVENTS))]
    operation = op(svc_name, name)
    region = acct.region
    event_id = guid(bits)
    resource_name = world.resource(acct, region, kind)
    params = gateway_params(operation, region, event_id)
    params[_KINDS[kind].param] = resource_name
    # Alibaba Cloud acting on its own: "system" identity and "Internal" source (spec §7, [L]).
    identity = {
        "type": "system",
        "accountId": acct.account_id,
        "principalId": acct.account_id,
        "userName": "AliyunServiceEvent",
    }
    return api_event(
        event_id=event_id,
        event_time=event_time,
        operation=operation,
        region=region,
        params=params,
        identity=identity,
        ip="Internal",
        user_agent=host_for(operation.service, region),
        resources=((kind, resource_name),),
        event_type="AliyunServiceEvent",
    )


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------


def write_ndjson(path: str | Path, events: Iterable[Mapping[str, Any]], gzip: bool = False) -> int:
    """Write one compact JSON event per line (gzip-compressed if asked); return the event count.

    The gzip header carries no timestamp or file name, so equal events give equal bytes.
    """
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    written = 0
    with open(path, "wb") as raw:
        sink: Any = (
            gzip_module.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            if gzip
            else raw
        )
        try:
            batch: list[bytes] = []
            for event in events:
                batch.append(dumps(event, option=newline))
                if len(batch) == 4096:
                    sink.write(b"".join(batch))
                    written += len(batch)
                    batch.clear()
            sink.write(b"".join(batch))
            written += len(batch)
        finally:
            if gzip:
                sink.close()
    return written


_DEMO_NAMES = frozenset(
    {
        "DEMO_ACCOUNT",
        "DEMO_ACCOUNT_IDS",
        "DemoStory",
        "MAIN_ACCOUNT_ID",
        "demo_events",
        "demo_story",
        "demo_story_facts",
    }
)


def __getattr__(name: str) -> Any:
    # The demo story builds on this module; re-export it lazily so both import paths work without a cycle.
    if name in _DEMO_NAMES:
        from . import demo_story

        return getattr(demo_story, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
