"""A PEP 517 build backend for the client, written with the standard library.

The client has no dependencies, and neither does its build: ``pip install
./client/python`` works offline, with no setuptools or wheel to fetch. It
reads ``pyproject.toml`` and builds a pure-Python wheel (or an sdist, or an
editable wheel that points back at this directory).
"""

import base64
import hashlib
import io
import os
import tarfile
import tomllib
import zipfile

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TAG = "py3-none-any"


def _project():
    with open(os.path.join(_HERE, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _dist_name(project):
    return f"{project['name'].replace('-', '_')}-{project['version']}"


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
        f"Summary: {project.get('description', '')}",
        f"Requires-Python: {project.get('requires-python', '>=3.12')}",
    ]
    lines += [f"Classifier: {c}" for c in project.get("classifiers", [])]
    lines += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {_for_extra(r, extra)}" for r in requirements]
    return "\n".join(lines) + "\n"


def _for_extra(requirement, extra):
    """A requirement that applies only with ``extra`` (PEP 508 marker)."""
    name, _, marker = requirement.partition(";")
    condition = f'extra == "{extra}"'
    if marker.strip():
        condition = f"({marker.strip()}) and {condition}"
    return f"{name.strip()}; {condition}"


def _package_files():
    """(archive name, path) of every module of the package."""
    package = os.path.join(_HERE, "extrainterpreters")
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            yield f"extrainterpreters/{name}", os.path.join(package, name)


def _write_wheel(directory, files):
    """Writes a wheel of ``files`` ((archive name, bytes) pairs)."""
    project = _project()
    dist_info = f"{_dist_name(project)}.dist-info"
    files = list(files) + [
        (f"{dist_info}/METADATA", _metadata(project).encode()),
        (f"{dist_info}/WHEEL", (
            "Wheel-Version: 1.0\nGenerator: extrainterpreters_build\n"
            f"Root-Is-Purelib: true\nTag: {_TAG}\n").encode()),
    ]
    record = io.StringIO()
    for name, data in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
        record.write(f"{name},sha256={digest.rstrip(b'=').decode()},{len(data)}\n")
    record.write(f"{dist_info}/RECORD,,\n")
    files.append((f"{dist_info}/RECORD", record.getvalue().encode()))
    wheel_name = f"{_dist_name(project)}-{_TAG}.whl"
    with zipfile.ZipFile(os.path.join(directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as wheel:
        for name, data in files:
            wheel.writestr(name, data)
    return wheel_name


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    return _write_wheel(wheel_directory,
                        ((name, _read(path)) for name, path in _package_files()))


def build_editable(wheel_directory, config_settings=None,
                   metadata_directory=None):
    # A .pth file puts this directory on sys.path: edits take effect at once.
    pth = (_HERE + "\n").encode()
    return _write_wheel(wheel_directory, [("extrainterpreters_editable.pth", pth)])


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = _dist_name(project)
    name = f"{base}.tar.gz"
    members = ["pyproject.toml", "build_backend/extrainterpreters_build.py"]
    members += [arcname for arcname, _ in _package_files()]
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as sdist:
        for member in members:
            sdist.add(os.path.join(_HERE, member), arcname=f"{base}/{member}")
        info = _metadata(project).encode()
        entry = tarfile.TarInfo(f"{base}/PKG-INFO")
        entry.size = len(info)
        sdist.addfile(entry, io.BytesIO(info))
    return name
