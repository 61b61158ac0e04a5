"""Build the Cython backend of convlab.

Every ``kernels/_cython/*.pyx`` becomes an extension module compiled with -O3 and OpenMP.
Set CONVLAB_PORTABLE=1 to leave out -march=native (for wheels that move between machines).
The generated .c files and the .so files are build outputs and are never committed.
"""
import glob
import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup


def _flags():
    if sys.platform == "win32":
        return ["/O2", "/openmp"], []
    compile_args = ["-O3", "-fopenmp", "-fno-math-errno"]
    if os.environ.get("CONVLAB_PORTABLE", "0") != "1":
        compile_args.append("-march=native")
    return compile_args, ["-fopenmp"]


def _extensions():
    compile_args, link_args = _flags()
    exts = []
    for path in sorted(glob.glob(os.path.join("kernels", "_cython", "*.pyx"))):
        name = os.path.splitext(path)[0].replace(os.sep, ".")
        exts.append(Extension(
            name, [path],
            include_dirs=[numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        ))
    return cythonize(exts, language_level=3, nthreads=os.cpu_count() or 1,
                     compiler_directives={"boundscheck": False, "wraparound": False,
                                          "cdivision": True, "initializedcheck": False})


setup(ext_modules=_extensions())
