"""Declared sources: a YAML spec per source says where it lands, how to read it and how its columns
map onto the canonical schema. A new source of a known kind is a new spec, not new code."""
