"""arm64 device emulation (qemu-user): the environment (env.py), the guest-side runner (guest.py) and emulated
validation of an artifact against the host (validate.py)."""
