"""Small helpers every package shares: atomic file writes, params loading, data paths."""
