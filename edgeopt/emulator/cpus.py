"""The emulated arm64 CPU models: qemu's ``-cpu`` name, the MIDR fields and the ``/proc/cpuinfo`` features Linux
prints on that core (XNNPACK reads them to pick its kernels), and which devices use it. Data only: target profiles
are checked against these names without importing the emulator."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CpuModel:
    name: str
    part: int  # MIDR part number, as /proc/cpuinfo's "CPU part"
    variant: int
    revision: int
    features: str  # /proc/cpuinfo "Features" as Linux prints it on that core
    like: str  # which devices use this core

    def cpuinfo(self, cores: int = 2) -> str:
        block = (f"BogoMIPS\t: 50.00\nFeatures\t: {self.features}\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
                 f"CPU variant\t: 0x{self.variant:x}\nCPU part\t: 0x{self.part:03x}\nCPU revision\t: {self.revision}\n")
        return "".join(f"processor\t: {i}\n{block}\n" for i in range(cores))


_V80 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V82 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
CPU_MODELS = {m.name: m for m in (
    CpuModel("cortex-a53", 0xd03, 0x0, 4, _V80, "Raspberry Pi Zero 2 W / Pi 3, little cores of older phones"),
    CpuModel("cortex-a72", 0xd08, 0x0, 3, _V80, "Raspberry Pi 4"),
    CpuModel("cortex-a76", 0xd0b, 0x4, 1, _V82, "Pixel 6/7 mid cores, Raspberry Pi 5 (ARMv8.2 + dotprod)"),
    CpuModel("neoverse-n1", 0xd0c, 0x3, 1, _V82 + " ssbs", "AWS Graviton2, Ampere Altra"),
)}
