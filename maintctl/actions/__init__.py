"""The actions: registry.py declares each once; one module per command, each ending in its ACTION;
base/ holds the shapes they are done in."""
