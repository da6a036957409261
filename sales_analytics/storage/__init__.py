"""Storage layer: the object-store lake, its Parquet IO manager, and the two report stores."""
