"""Report tables: computed from the curated lake, published to the SQL and serving stores."""
