"""Which MKL code path the torch in this process runs: mkl_serv_cpu_detect() from libtorch_cpu (MKL is linked into
it statically and exports its service functions). 0: the AVX2 path MKL gives non-Intel CPUs; 7: AVX-512. -1: no MKL.
bench/compare records it beside every Python run, so a run with sftkit's MKL dispatch library LD_PRELOADed shows that
the preload took effect.
"""
import ctypes
import os

import torch


def mkl_code_path():
    try:
        lib = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
        return int(lib.mkl_serv_cpu_detect())
    except (OSError, AttributeError):
        return -1
