"""The curated zone: facts shaped for analysis and ML, built per day from the clean zone."""
