"""mdic_lab.coding."""
