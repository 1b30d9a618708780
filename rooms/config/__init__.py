"""Configuration: the model (model.py), reading it (loading.py), checking each value (checks.py), and showing it
with secrets masked (masking.py)."""
