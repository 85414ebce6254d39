"""The Vulkan driver LiteRT's GPU accelerator runs on: a real GPU's driver when the machine has one, else Mesa's
lavapipe (a software Vulkan device) set up in the user cache, so GPU validation runs on CI and on this machine.

LiteRT's GPU accelerator in ai-edge-litert 2.3.0 is WebGPU (Dawn) over Vulkan (TOOLCHAIN section 7). Debian 12's
own Mesa 22.3 lavapipe is refused by Dawn (``shaderUniform*ArrayDynamicIndexing``); Mesa 25 from
bookworm-backports works. ``setup`` downloads ``mesa-vulkan-drivers`` from bookworm-backports and the Vulkan
loader ``libvulkan1`` (and any library they need that the host lacks) with apt-get into a private apt directory
(no root, nothing installed system-wide), unpacks them with ``dpkg -x`` and keeps lavapipe and the loader::

    $EDGEOPT_GPU_DIR (default ~/.cache/edgeopt/gpu)/
        lib/            libvulkan_lvp.so, libvulkan.so.1 and the libraries the host lacked
        lvp_icd.json    the ICD manifest, with lavapipe's absolute path
        ready.json      what was set up (versions, size, seconds) and the adapter Dawn selected

The driver's environment must be in place before the Vulkan loader is first loaded, so every GPU run happens in
a child process (``edgeopt.gpu.worker``) started with it.
"""
from __future__ import annotations

import glob
import json
import os
import re
from pathlib import Path


SUITE, BACKPORTS = "bookworm", "bookworm-backports"
PACKAGES = ("mesa-vulkan-drivers/" + BACKPORTS, "libvulkan1")
DROP = re.compile(r"^(libvulkan_(?!lvp).*|libVkLayer_.*)$")  # other drivers and layers: not used, 40 MB
SYSTEM_ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SETUP_CMD = "edgeopt gpu setup"
LAYOUT_VERSION = 1
LIB = "usr/lib/x86_64-linux-gnu"


def root() -> Path:
    from ..data.datasets import cache_dir

    base = os.environ.get("EDGEOPT_GPU_DIR")  # to share one driver between caches (CI, tests)
    return Path(base) if base else cache_dir() / "gpu"


def status() -> dict:
    """What is there, without changing anything."""
    r = root()
    info = json.loads((r / "ready.json").read_text()) if (r / "ready.json").is_file() else None
    problems = []
    if info is None:
        problems.append(f"the software Vulkan driver is not set up ({SETUP_CMD})")
    elif info.get("layout") != LAYOUT_VERSION or not (r / "lib" / "libvulkan_lvp.so").is_file() or not (
            r / "lvp_icd.json").is_file():
        problems.append(f"the software Vulkan driver is incomplete or from another edgeopt version ({SETUP_CMD} "
                        f"rebuilds it)")
    return {"root": str(r), "ready": not problems, "problems": problems, "info": info,
            "system_icds": system_icds()}


def system_icds() -> list[str]:
    """The Vulkan drivers (ICD manifests) installed on this machine, lavapipe's excluded."""
    return sorted(f for d in SYSTEM_ICD_DIRS for f in glob.glob(os.path.join(d, "*.json"))
                  if "lvp" not in os.path.basename(f))


def child_env(software: bool) -> dict:
    """The environment of a GPU child process: the software driver's ICD and libraries, or the system's."""
    env = {k: v for k, v in os.environ.items() if k not in ("VK_ICD_FILENAMES", "VK_DRIVER_FILES")}
    if software:
        r = root()
        env["VK_ICD_FILENAMES"] = str(r / "lvp_icd.json")
        env["LD_LIBRARY_PATH"] = os.pathsep.join([str(r / "lib"), *filter(None, [env.get("LD_LIBRARY_PATH")])])
    return env
