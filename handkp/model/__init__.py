"""The heatmap network, its checkpoint format and its training (the resume fingerprint hashes core/, data/ and this folder)."""
