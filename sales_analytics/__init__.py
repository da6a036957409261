"""sales_analytics: batch processing and sales analytics on Dagster."""
