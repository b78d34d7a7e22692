"""Example user activations for actbench (see activations.py and this folder's pyproject.toml)."""
