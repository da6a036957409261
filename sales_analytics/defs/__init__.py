"""The project's `dg` defs module (`[tool.dg.project] defs_module`): one component instance per
source (`sources/<name>/defs.yaml`) and per dashboard (`dashboards/<name>/defs.yaml`).

`dg scaffold defs sales_analytics.components.SourceComponent sources/<name>` adds one; the code
location (`sales_analytics.definitions`) loads them beside the platform's own assets.
"""
