"""The lineage's asset groups, and what every asset of a group shares: its owners, tags and kinds.

An asset names only its group (and the kinds or owner that set it apart); ``with_group_defaults``
adds the rest when the code location is assembled, so a group's owner changes in one place.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

DATA_ENGINEERING, DATA_SCIENCE, ANALYTICS = "team:data-engineering", "team:data-science", "team:analytics"


@dataclass(frozen=True)
class Group:
    owners: tuple[str, ...] = ()  # for assets that name none of their own (a dashboard names its owner)
    kinds: frozenset[str] = field(default_factory=frozenset)


GROUPS = {
    "sources": Group((DATA_ENGINEERING,), frozenset({"s3"})),  # what lands, or is extracted, in the landing zone
    "raw": Group((DATA_ENGINEERING,), frozenset({"s3", "parquet"})),  # every landed record, once per object version
    "clean": Group((DATA_ENGINEERING,), frozenset({"parquet", "pyarrow"})),  # canonical tables, dimensions with history
    "quarantine": Group((DATA_ENGINEERING,), frozenset({"parquet"})),  # rejected records with their reasons
    "curated": Group((DATA_SCIENCE,), frozenset({"parquet", "pyarrow"})),  # modelling inputs
    "ml": Group((DATA_SCIENCE,)),  # models, champions, forecasts, scores, OCR
    "reports": Group((ANALYTICS,), frozenset({"parquet"})),  # report tables in the lake
    "publishing": Group((ANALYTICS,)),  # the reports' copies in PostgreSQL (BI) and DynamoDB (serving)
    "dashboards": Group(),  # each dashboard's insights and page
}
LAYER_TAG = "layer"


def with_group_defaults(assets: Iterable[Any]) -> Sequence[Any]:
    """Assets (or specs) with their group's owners, kinds and layer tag added."""
    return dg.map_asset_specs(_with_group_defaults, assets)


def _with_group_defaults(spec: dg.AssetSpec) -> dg.AssetSpec:
    group = GROUPS[str(spec.group_name)]
    return spec.replace_attributes(
        owners=list(spec.owners) or list(group.owners),
        kinds=set(spec.kinds) | group.kinds,
        tags={**spec.tags, LAYER_TAG: spec.group_name},
    )
