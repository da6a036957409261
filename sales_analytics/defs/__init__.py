"""The project's `dg` defs module (`[tool.dg.project] defs_module`), where `dg scaffold defs` writes.

The code location itself is built in `sales_analytics.definitions` from the declarations under
`sources/specs/` and `dashboards/specs/`.
"""
