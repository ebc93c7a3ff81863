"""One runner process, assembled: its modes, its parts built from the config, its checks."""
