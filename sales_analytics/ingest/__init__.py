"""Ingestion: landing zone → raw zone, each landed object exactly once, with lineage."""
