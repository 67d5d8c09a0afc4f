"""Experiments over the pipeline through `dvc exp`: the ablation of the head variants."""
