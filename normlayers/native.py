"""BGN's native CPU kernel (``csrc/bgn_cpu.cpp``): built once per machine, cached, loaded on demand.

Why a hand-written operator: below about 256k elements nn.BatchNorm2d is one fused
kernel whose cost is mostly framework overhead (one Python call, one dispatch, one
C++ autograd node). Any BGN built from several ATen operators, or from a Python
autograd Function, pays that overhead several times over; ``torch.compile`` adds its
own wrappers. The native operator has BN's call structure, so BGN costs what BN costs
(``python -m normlayers.bench``, docs/benchmarks.md).

Building: the C++ compiler (``$CXX`` or ``c++``) compiles one source file against the
installed torch (about 30 s on 2 cores) into a cache directory keyed by the source,
torch build, compiler flags and CPU capability, so a shared home directory serves
machines with different CPUs or torch versions side by side. Concurrent builders
(a sweep's workers, DDP ranks) each write a private file and rename it into place.
The cache is ``$NORMLAYERS_CACHE_DIR``, else ``$XDG_CACHE_HOME/normlayers``, else
``~/.cache/normlayers``. ``python -m normlayers.native build`` builds ahead of time
(``scripts/install_deps.sh``, hence ``make env``, ``make test`` and ``make demo``, does); otherwise the first
eligible forward builds it.

``NORMLAYERS_NATIVE=0`` turns the kernel off. Without a compiler, or when the build
fails, BGN warns once and uses its eager paths; nothing else changes.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

__all__ = ["native_ops", "native_enabled", "build", "library_path", "status"]

SOURCE = Path(__file__).with_name("csrc") / "bgn_cpu.cpp"
_state: dict[str, Any] = {"ops": None, "tried": False, "error": None}


def native_enabled() -> bool:
    """False when the user turned the kernel off with NORMLAYERS_NATIVE=0."""
    return os.environ.get("NORMLAYERS_NATIVE", "1").strip().lower() not in ("0", "false", "no", "off")


def _cache_root() -> Path:
    if os.environ.get("NORMLAYERS_CACHE_DIR"):
        return Path(os.environ["NORMLAYERS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "normlayers"


def _compile_command(source: Path, output: Path) -> list[str]:
    torch_dir = Path(torch.__file__).parent
    flags = ["-O3", "-std=c++20", "-shared", "-fPIC", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={int(torch.compiled_with_cxx11_abi())}"]
    if torch.backends.openmp.is_available():
        flags.append("-fopenmp")  # at::parallel_for is inline OpenMP; libgomp is torch's (same soname)
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]  # 32-byte vectors; AVX-512 brings nothing to these memory-bound loops
    includes = [f"-I{torch_dir / 'include'}", f"-I{torch_dir / 'include' / 'torch' / 'csrc' / 'api' / 'include'}"]
    libs = [f"-L{torch_dir / 'lib'}", "-lc10", "-ltorch_cpu", "-ltorch"]
    return [os.environ.get("CXX", "c++"), *flags, *includes, str(source), *libs, "-o", str(output)]


def library_path() -> Path:
    """Where the build for this source, torch, compiler and CPU lives (whether or not it exists yet)."""
    key = "\n".join([
        hashlib.sha256(SOURCE.read_bytes()).hexdigest(),
        torch.__version__,
        str(torch.version.git_version),
        " ".join(_compile_command(Path("src"), Path("out"))),
        torch.backends.cpu.get_cpu_capability(),
        platform.machine(),
    ])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return _cache_root() / f"bgn_cpu-{digest}" / "bgn_cpu.so"


def build(verbose: bool = False) -> Path:
    """Compile the kernel into the cache (no-op when present); returns the library's path."""
    target = library_path()
    if target.exists():
        return target
    compiler = _compile_command(SOURCE, target)[0]
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler found (looked for {compiler!r}; set $CXX to use another one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / target.name
        command = _compile_command(SOURCE, partial)
        if verbose:
            print(" ".join(command), flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {SOURCE.name} failed ({' '.join(command)}):\n{done.stderr[-4000:]}")
        os.replace(partial, target)  # atomic: a concurrent builder's identical file may already be there
    return target


def native_ops() -> Any | None:
    """``torch.ops.normlayers`` with the native kernel loaded, or None (disabled, no compiler, failed build).

    The first call per process may build (once per machine); a failure is warned about once.
    """
    if _state["ops"] is not None or _state["tried"]:
        return _state["ops"]
    _state["tried"] = True
    if not native_enabled():
        return None
    try:
        path = library_path()
        if not path.exists():
            start = time.perf_counter()
            print(f"normlayers: compiling BGN's CPU kernel once into {path.parent} (about 30 s) ...", file=sys.stderr, flush=True)
            build()
            print(f"normlayers: built in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        torch.ops.load_library(str(path))
        _state["ops"] = torch.ops.normlayers
    except Exception as error:  # noqa: BLE001 - any failure means: use the eager paths
        _state["error"] = f"{type(error).__name__}: {error}"
        warnings.warn(
            f"normlayers: BGN's native CPU kernel is unavailable, using the eager paths ({_state['error']}). "
            "Set NORMLAYERS_NATIVE=0 to silence this.",
            RuntimeWarning,
            stacklevel=2,
        )
    return _state["ops"]


def status() -> str:
    """One line for benchmark headers and bug reports."""
    if not native_enabled():
        return "native kernel: off (NORMLAYERS_NATIVE=0)"
    ops = native_ops()
    return f"native kernel: {library_path()}" if ops is not None else f"native kernel: unavailable ({_state['error']})"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m normlayers.native", description="Build or locate BGN's native CPU kernel.")
    parser.add_argument("command", choices=["build", "status"])
    args = parser.parse_args(argv)
    if args.command == "build":
        start = time.perf_counter()
        try:
            path = build(verbose=True)
        except RuntimeError as error:
            print(f"normlayers: {error}\nBGN will use its eager paths.", file=sys.stderr)
            return 1
        print(f"{path} ({time.perf_counter() - start:.1f} s)")
        return 0
    print(status())
    return 0


if __name__ == "__main__":
    sys.exit(main())
