"""mdic_lab.models."""
