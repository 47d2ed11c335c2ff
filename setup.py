"""Package discovery for the one import root.

pyproject.toml holds the metadata; this file only lists the packages, because the
top-level folders encoders/ and data/ install as crossmodal.encoders and crossmodal.data
and every sub-folder of them must follow (tests/test_packaging.py checks the wheel).
"""

from setuptools import find_packages, setup

# Source folder -> import name.
ROOTS = {"crossmodal": "crossmodal", "encoders": "crossmodal.encoders", "data": "crossmodal.data"}

packages = []
package_dir = {}
for folder, name in ROOTS.items():
    package_dir[name] = folder
    packages.append(name)
    packages.extend(f"{name}.{sub}" for sub in find_packages(where=folder))

setup(packages=packages, package_dir=package_dir)
