"""Validators: each measures one thing about an artifact through the runtime protocol."""
