"""The release: the shipped models under release/ and their manifest."""
