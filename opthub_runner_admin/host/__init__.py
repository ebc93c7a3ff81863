"""This machine: which processes are alive, which runners run here (their pid files)."""
