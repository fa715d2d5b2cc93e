"""Build, check and demo tooling for the course (plain Python, run through the Makefile)."""
