"""Statistics in float64: moments, column checks, the exact optimum and its inference."""
