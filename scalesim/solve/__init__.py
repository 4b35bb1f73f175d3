"""Solve layer: searches on top of the chain (emission-optimal configurations)."""
