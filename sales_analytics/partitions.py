"""Partitioning: facts and reports are partitioned by order date (UTC days)."""

import warnings

import dagster as dg

# backfill_policy is marked beta; we rely on it deliberately, so its warning is noise in every run.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*backfill_policy.*")

daily_partitions = dg.DailyPartitionsDefinition(start_date="2015-01-01")

# Backfills run in chunks of a month per run: memory stays bounded by the chunk, not by history.
monthly_chunks = dg.BackfillPolicy.multi_run(max_partitions_per_run=31)
