"""The regions ActionTrail serves: DescribeRegions' answer, and what TrailRegion may name.

Trailhouse is one service wherever it runs; a trail's home region is the one this server speaks
for (``TRAILHOUSE_REGION``). The list is Alibaba Cloud's public regions with their English and
Chinese names (DescribeRegions' ``AcceptLanguage`` picks one).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGIONS", "REGION_IDS", "Region", "describe_regions", "region_endpoint"]


@dataclass(frozen=True, slots=True)
class Region:
    region_id: str
    name_en: str
    name_zh: str


REGIONS: tuple[Region, ...] = (
    Region("cn-qingdao", "China (Qingdao)", "华北1（青岛）"),
    Region("cn-beijing", "China (Beijing)", "华北2（北京）"),
    Region("cn-zhangjiakou", "China (Zhangjiakou)", "华北3（张家口）"),
    Region("cn-huhehaote", "China (Hohhot)", "华北5（呼和浩特）"),
    Region("cn-wulanchabu", "China (Ulanqab)", "华北6（乌兰察布）"),
    Region("cn-hangzhou", "China (Hangzhou)", "华东1（杭州）"),
    Region("cn-shanghai", "China (Shanghai)", "华东2（上海）"),
    Region("cn-nanjing", "China (Nanjing - Local Region)", "华东5（南京-本地地域）"),
    Region("cn-fuzhou", "China (Fuzhou - Local Region)", "华东6（福州-本地地域）"),
    Region("cn-shenzhen", "China (Shenzhen)", "华南1（深圳）"),
    Region("cn-heyuan", "China (Heyuan)", "华南2（河源）"),
    Region("cn-guangzhou", "China (Guangzhou)", "华南3（广州）"),
    Region("cn-chengdu", "China (Chengdu)", "西南1（成都）"),
    Region("cn-hongkong", "China (Hong Kong)", "中国香港"),
    Region("ap-northeast-1", "Japan (Tokyo)", "日本（东京）"),
    Region("ap-northeast-2", "South Korea (Seoul)", "韩国（首尔）"),
    Region("ap-southeast-1", "Singapore", "新加坡"),
    Region("ap-southeast-3", "Malaysia (Kuala Lumpur)", "马来西亚（吉隆坡）"),
    Region("ap-southeast-5", "Indonesia (Jakarta)", "印度尼西亚（雅加达）"),
    Region("ap-southeast-6", "Philippines (Manila)", "菲律宾（马尼拉）"),
    Region("ap-southeast-7", "Thailand (Bangkok)", "泰国（曼谷）"),
    Region("us-east-1", "US (Virginia)", "美国（弗吉尼亚）"),
    Region("us-west-1", "US (Silicon Valley)", "美国（硅谷）"),
    Region("eu-west-1", "UK (London)", "英国（伦敦）"),
    Region("eu-central-1", "Germany (Frankfurt)", "德国（法兰克福）"),
    Region("me-east-1", "UAE (Dubai)", "阿联酋（迪拜）"),
    Region("me-central-1", "Saudi Arabia (Riyadh)", "沙特（利雅得）"),
)
REGION_IDS = frozenset(r.region_id for r in REGIONS)


def region_endpoint(region_id: str) -> str:
    return f"actiontrail.{region_id}.aliyuncs.com"


def describe_regions(accept_language: str | None) -> list[tuple[str, str, str]]:
    """(RegionId, LocalName, RegionEndpoint) of every region; Chinese names for ``zh-CN``."""
    chinese = (accept_language or "").lower().startswith("zh")
    return [(r.region_id, r.name_zh if chinese else r.name_en, region_endpoint(r.region_id)) for r in REGIONS]
