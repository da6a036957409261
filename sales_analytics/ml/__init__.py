"""Machine learning in the graph: demand forecasting (quantiles, backtests, registry)."""
