"""Chain layer: validate inputs -> run steps -> compose a labelled Dataset (simulate, throughput)."""
