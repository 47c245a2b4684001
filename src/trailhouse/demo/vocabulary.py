"""What the generated world is made of: clients, caller networks, principal and resource names, and
the shape of the traffic (the daily rhythm, the mix of event kinds, the AccessKey skew)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

# Clients. Each AccessKey or role session sticks to one of these, like a real deployment does.
SDK_AGENTS = (
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
BROWSER_AGENTS: tuple[str, ...] = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)

# First two octets of caller networks, weighted: Alibaba Cloud ECS ranges, Chinese ISPs, foreign clouds
# and VPC-internal addresses. The demo story's attacker ranges (185.220.x, 45.155.x) are not here.
NETS: tuple[tuple[str, float], ...] = (
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

SERVICE_USERS = (
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
GIVEN_NAMES = (
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
FAMILY_NAMES = (
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
ROLES = (
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
ALIASES = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "soylent")
POLICIES = (
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
NAME_WORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
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
ENVS = ("prod", "staging", "dev")
OBJECT_DIRS = (
    "logs/2024/",
    "backup/mysql/",
    "uploads/images/",
    "static/js/",
    "exports/reports/",
    "datasets/train/",
    "releases/",
)
OBJECT_EXTS = (".gz", ".tar.gz", ".jpg", ".js", ".csv", ".parquet", ".zip")
ID_PREFIXES: Mapping[str, str] = MappingProxyType(
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
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"
KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

# Relative activity per Beijing-time hour (UTC+8): office hours peak, a batch-job floor at night.
HOURLY = (
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
WEEKEND = 0.45
SECONDS = tuple(f"{s:02d}Z" for s in range(60))

# Mix of event kinds (cumulative thresholds).
P_AK = 0.70
P_STS = P_AK + 0.17
P_CONSOLE = P_STS + 0.085
P_SIGNIN = P_CONSOLE + 0.03  # the remainder are AliyunServiceEvent

KEY_ZIPF = 1.35  # top-3 AccessKeys carry ~45-70% of AccessKey calls depending on the pool size
