"""Benchmark material: synthetic videos of several moving hands made from val images, for the multihand benchmark."""
