"""Where sources and dashboards are declared: component instances (``<name>/defs.yaml``) under the
project's ``defs`` folder, then under the folders a deployment names in an environment variable.

Dagster builds each instance's own definitions through its component (``sales_analytics.components``);
the graph around them (raw ingestion's inputs, the reference tables, the web app's dashboard list)
needs the whole set when the code location is assembled, and reads it here from the same files.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

DEFS_DIR = Path(__file__).parent / "defs"
INSTANCE_FILE = "defs.yaml"
SOURCE_COMPONENT = "sales_analytics.components.SourceComponent"
DASHBOARD_COMPONENT = "sales_analytics.components.DashboardComponent"
# libyaml's parser where PyYAML was built with it: every process that loads the code location reads these files
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def deployment_folders(env: str, error: type[Exception]) -> list[Path]:
    """The folders named in ``env`` (separated by ``os.pathsep``); each must exist."""
    folders = [Path(p) for p in os.environ.get(env, "").split(os.pathsep) if p]
    missing = [str(p) for p in folders if not p.is_dir()]
    if missing:
        raise error(f"{env}: {', '.join(missing)} is not a folder")
    return folders


def instances(component_type: str, folders: list[Path], error: type[Exception]) -> Iterator[tuple[Path, Any]]:
    """(file, attributes) of each instance of ``component_type`` in the folders, in path order."""
    for folder in folders:
        for path in sorted(folder.rglob(INSTANCE_FILE)):
            yield from ((path, attributes) for attributes in read_instances(path, component_type, error))


def read_instances(path: Path, component_type: str, error: type[Exception]) -> list[Any]:
    """The attributes of each instance of ``component_type`` in one ``defs.yaml``."""
    try:
        documents = [d for d in yaml.load_all(path.read_text(), Loader=SAFE_LOADER) if d is not None]
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from err
    for document in documents:
        if not isinstance(document, dict) or "type" not in document:
            raise error(f"{path}: expected `type:` and `attributes:` (a component instance)")
    return [d.get("attributes") for d in documents if d["type"] == component_type]


def attribute_problems(err: ValidationError) -> str:
    """Each problem with the field it is in, as the YAML names it (``attributes.columns.order_id``)."""
    return "; ".join(f"{'.'.join(['attributes', *map(str, e['loc'])])}: {e['msg']}" for e in err.errors())
