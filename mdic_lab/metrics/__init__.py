"""mdic_lab.metrics."""
