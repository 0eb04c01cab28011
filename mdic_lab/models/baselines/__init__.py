"""mdic_lab.models.baselines."""
