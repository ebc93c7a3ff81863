"""The operator's ``config.yml``: every part's keys joined, read, checked and documented."""
