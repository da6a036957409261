"""The lake's zones: raw (as landed) → clean (typed, deduplicated, keyed) → curated."""
