"""Build of the compiled op library `oml_fast._C`.

Knobs (environment variables, printed at build start):
  FORCE_CUDA=1            compile the CUDA kernels even if torch sees no GPU (needs a CUDA toolkit
                          and a CUDA build of torch).
  USE_CUDA=0              never compile the CUDA kernels.
  DEBUG=1                 -O0 -g, no NDEBUG.
  TORCH_CUDA_ARCH_LIST    CUDA architectures, e.g. "9.0" (read by torch.utils.cpp_extension).
  CUDA_HOME               root of the CUDA toolkit (the folder whose bin/ holds nvcc).
"""

from __future__ import annotations

import glob
import os
import sys

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name: str, default: str = "0") -> bool:
    return os.environ.get(name, default).strip().lower() in ("1", "true", "yes", "on")


def _want_cuda() -> tuple[bool, str]:
    if os.environ.get("USE_CUDA", "").strip() == "0":
        return False, "USE_CUDA=0"
    if torch.version.cuda is None:
        if _env_flag("FORCE_CUDA"):
            sys.exit(
                "FORCE_CUDA=1 but the installed torch is a CPU-only build; install a CUDA build of torch"
            )
        return False, f"torch {torch.__version__} has no CUDA"
    if _env_flag("FORCE_CUDA"):
        return True, "FORCE_CUDA=1"
    if CUDA_HOME is None:
        return False, "no CUDA toolkit found (set CUDA_HOME)"
    if not torch.cuda.is_available():
        return False, "torch sees no GPU (set FORCE_CUDA=1 to compile anyway)"
    return True, f"GPU found, toolkit at {CUDA_HOME}"


def _cuda_include_dirs() -> list[str]:
    # ATen/cuda/CUDAContext.h pulls in cublas_v2.h / cusparse.h; pip-installed CUDA builds of torch
    # keep those headers in site-packages/nvidia/*/include rather than in the toolkit.
    site = os.path.dirname(os.path.dirname(torch.__file__))
    found = glob.glob(os.path.join(site, "nvidia", "*", "include"))
    return sorted(d for d in found if os.path.isdir(d))


def _write_build_info(with_cuda: bool) -> None:
    with open(os.path.join(ROOT, "oml_fast", "_build_info.py"), "w") as f:
        f.write("# Written by setup.py at build time; do not edit.\n")
        f.write(f"TORCH_VERSION = {torch.__version__!r}\n")
        f.write(f"WITH_CUDA = {with_cuda!r}\n")


def extensions():
    debug = _env_flag("DEBUG")
    with_cuda, why = _want_cuda()
    print(
        f"[oml_fast] torch {torch.__version__}, CUDA kernels: {'ON' if with_cuda else 'OFF'} ({why}), "
        f"DEBUG={int(debug)}, TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST', '<torch default>')}",
        flush=True,
    )
    _write_build_info(with_cuda)

    # Every .cpp (CPU kernels and device-independent code); .cu files only for CUDA builds.
    sources = sorted(glob.glob("csrc/**/*.cpp", recursive=True))
    opt = ["-O0", "-g"] if debug else ["-O3"]
    cxx_flags = [*opt, "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wno-unused-function", "-fno-math-errno"]
    extra = {"cxx": cxx_flags}
    define_macros = [] if debug else [("NDEBUG", None)]
    include_dirs = [os.path.join(ROOT, "csrc")]
    if with_cuda:
        sources += sorted(glob.glob("csrc/**/cuda/*.cu", recursive=True))
        define_macros.append(("OML_FAST_WITH_CUDA", None))
        extra["nvcc"] = [*opt, "--expt-relaxed-constexpr", "-lineinfo"]
        include_dirs += _cuda_include_dirs()
        ext_cls = CUDAExtension
    else:
        ext_cls = CppExtension
    return [
        ext_cls(
            "oml_fast._C",
            sources,
            include_dirs=include_dirs,
            define_macros=define_macros,
            extra_compile_args=extra,
            extra_link_args=["-fopenmp"],
        )
    ]


setup(
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
