#!/usr/bin/env python
"""Fetch transformers' common model tests for the installed release, for tests/test_transformers_common.py.

transformers' `ModelTesterMixin` and `ConfigTester` live in `tests/` of its source tree, which no wheel ships. This
script downloads the sdist of the *installed* version from PyPI (`pip download --no-binary :all: --no-deps`),
extracts `tests/test_modeling_common.py`, `tests/test_configuration_common.py` and every module of `tests/` that
they import (followed transitively), and lays them out as the importable package `hf_tests` under the git-ignored
folder `.transformers_tests/`:

    .transformers_tests/
        VERSION                      the transformers version the files come from (written last)
        hf_tests/__init__.py         (empty, as upstream's tests/__init__.py)
        hf_tests/test_modeling_common.py, hf_tests/test_configuration_common.py, ...
        hf_tests/utils/test_configuration_utils.py     stand-ins from tests/transformers_standins/
        hf_tests/generation/test_utils.py
        hf_tests/exporters/test_export.py

The sdist carries only the top-level files of `tests/`; the three modules above are imported but missing, so the
stand-ins kept in this repository (tests/transformers_standins/) are copied in their place. A relative import that
is neither in the sdist nor stood in for is an error (a new transformers release may need a new stand-in).

Idempotent: when `.transformers_tests/VERSION` already names the installed version, nothing is downloaded; the
stand-ins are recopied every time (cheap), so edits to them take effect. `--force` downloads again; `--sdist PATH`
uses a local sdist instead of downloading (offline use). Downloading takes ~5-10 s (an 11 MB sdist).

Usage:  python scripts/fetch_transformers_tests.py [--force] [--sdist transformers-X.Y.Z.tar.gz]
"""

import argparse
import ast
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path


REPO = Path(__file__).resolve().parent.parent
TARGET = REPO / ".transformers_tests"
PACKAGE = "hf_tests"  # the import name of the fetched tests/ folder (not "tests", which this repo uses)
STANDINS = REPO / "tests" / "transformers_standins"
# module path inside upstream tests/ -> stand-in file in this repository
STANDIN_FOR = {
    "utils/test_configuration_utils.py": "config_common_kwargs.py",
    "generation/test_utils.py": "generation_tester.py",
    "exporters/test_export.py": "export_tester.py",
}
ROOT_FILES = ("test_modeling_common.py", "test_configuration_common.py")


def relative_imports(source: str, module_path: str) -> set[str]:
    """Paths (inside tests/) of the modules that `from .x.y import z` statements of a tests/ module refer to."""
    package_parts = module_path.split("/")[:-1]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = package_parts[: len(package_parts) - (node.level - 1)]
            if node.module:
                found.add("/".join(base + node.module.split(".")) + ".py")
            else:  # `from . import x`: each name is a module of the package
                found.update("/".join(base + [alias.name]) + ".py" for alias in node.names)
    return found


def download_sdist(version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "--no-cache-dir",
           "--disable-pip-version-check", "--quiet", f"transformers=={version}", "-d", str(dest)]  # fmt: skip
    print(f"fetch_transformers_tests: downloading the transformers {version} sdist from PyPI ...", flush=True)
    start = time.monotonic()
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit(
            f"fetch_transformers_tests: `pip download` of the transformers {version} sdist failed (see above); "
            f"PyPI must be reachable, or pass --sdist PATH"
        )
    sdists = sorted(dest.glob("transformers-*.tar.gz"))
    if len(sdists) != 1:
        raise SystemExit(f"fetch_transformers_tests: expected one transformers sdist in {dest}, found {sdists}")
    print(f"fetch_transformers_tests: downloaded {sdists[0].name} in {time.monotonic() - start:.1f} s", flush=True)
    return sdists[0]


def extract_tests(sdist: Path, version: str) -> dict[str, bytes]:
    """{path inside tests/: content} for the root files and the tests/ modules they import, transitively."""
    with tarfile.open(sdist, "r:gz") as tar:
        members = {}
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if member.isfile() and len(parts) > 2 and parts[1] == "tests" and member.name.endswith(".py"):
                members["/".join(parts[2:])] = member
        if not members:
            raise SystemExit(f"fetch_transformers_tests: {sdist.name} holds no tests/ folder")
        files, todo = {}, list(ROOT_FILES)
        while todo:
            path = todo.pop()
            if path in files or path in STANDIN_FOR:
                continue
            if path not in members:
                raise SystemExit(
                    f"fetch_transformers_tests: tests/{path} is imported by the common tests but the transformers "
                    f"{version} sdist does not ship it: add a stand-in to {STANDINS.relative_to(REPO)} and to "
                    f"STANDIN_FOR in this script."
                )
            files[path] = tar.extractfile(members[path]).read()
            todo.extend(relative_imports(files[path].decode("utf-8"), path))
    return files


def write_standins(package: Path) -> None:
    for upstream_path, standin in STANDIN_FOR.items():
        target = package / upstream_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STANDINS / standin, target)
    ensure_init_files(package)


def ensure_init_files(package: Path) -> None:
    """Relative imports need packages: an empty __init__.py in hf_tests/ and each of its subfolders (upstream's
    tests/__init__.py is empty too, and the sdist omits it)."""
    for folder in [package, *(p for p in package.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        (folder / "__init__.py").touch()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="download and extract again even if present")
    parser.add_argument("--sdist", type=Path, help="use this local transformers sdist instead of downloading")
    args = parser.parse_args(argv)

    version = importlib.metadata.version("transformers")
    stamp = TARGET / "VERSION"
    package = TARGET / PACKAGE
    present = stamp.is_file() and stamp.read_text().strip() == version and (package / ROOT_FILES[0]).is_file()
    if present and not args.force:
        write_standins(package)
        print(f"fetch_transformers_tests: transformers {version} tests already in {TARGET} (stand-ins refreshed)")
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        sdist = args.sdist or download_sdist(version, Path(tmp))
        if args.sdist and f"transformers-{version}" not in sdist.name:
            raise SystemExit(f"fetch_transformers_tests: {sdist} is not the sdist of the installed {version}")
        files = extract_tests(sdist, version)

    if TARGET.exists():
        shutil.rmtree(TARGET)
    for path, content in files.items():
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_bytes(content)
    write_standins(package)
    (TARGET / ".gitignore").write_text("*\n")  # ignored even before the repository's .gitignore names it
    stamp.write_text(version + "\n")  # last: a half-written folder is never taken for a complete one
    print(f"fetch_transformers_tests: wrote {', '.join(sorted(files))} and {len(STANDIN_FOR)} stand-ins to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
