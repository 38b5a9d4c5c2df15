"""A function's dependencies as `sam build` resolves them, installed once into a cache.

Where a function's requirements come from, as `sam build` finds them:
- the function's own `requirements.txt` in its CodeUri (the default Python builder
  installs it beside the code; a makefile build usually installs the same file);
- each of its layers': `requirements.txt` in the layer's ContentUri when `sam build`
  builds the layer (Metadata BuildMethod python3.x or makefile); a layer without a
  BuildMethod is zipped as it is, so nothing is installed for it;
- a makefile build may install anything, so the settings file's `Requirements` can
  name the file per function or layer (Sluice: `{"SluiceLayer": "requirements.lock"}`).

Each file is installed with uv (pip when uv is absent) for this machine's Python into
`<deps_dir>/<LogicalId>/<hash>/`, the hash of the file's contents and of the Python
and machine: a folder that exists is used as it is, so a restart installs nothing and
works offline.

The worker's path is then Lambda's: the code folder and the function's packages
(/var/task), each layer and its packages (/opt/python), and last the boto3 Lambda's
Python runtime provides (here the runtime's own, linked into `<deps_dir>/_runtime/`),
which a function's own copy shadows, as in Lambda. Nothing else of the runtime's
virtualenv is on it: the worker runs with `python -S`.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from samtranslator.plugins.globals.globals import Globals

from local_runtime.template import FUNCTION, LAYER, Function, Template

REQUIREMENTS = "requirements.txt"
RUNTIME_PACKAGES = ("boto3",)  # what Lambda's Python runtime has besides the standard library
# botocore 1.31.0 (boto3 1.28.0) is the first to read AWS_ENDPOINT_URL and
# AWS_ENDPOINT_URL_<SERVICE>; an older one sends every call to AWS's own endpoints.
ENDPOINT_VARIABLES_BOTOCORE = (1, 31, 0)
_VERSION = re.compile(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", re.MULTILINE)


class DependencyError(RuntimeError):
    """A function's requirements could not be installed."""


@dataclass(frozen=True)
class Requirements:
    owner: str  # the function's or the layer's logical id
    file: Path


@dataclass(frozen=True)
class Resolution:
    python_path: tuple[Path, ...]
    summary: str  # "requirements.txt → 3 packages (cached)", for the start line
    warning: str | None = None  # a botocore that ignores the local endpoints
    watched: tuple[Path, ...] = ()  # the requirements files: a change means a new install


def requirements_of(template: Template, logical_id: str) -> list[Requirements]:
    """The function's own requirements first, then its layers', in the function's order."""
    resource = template.resources[logical_id]
    properties = Globals(template.document).merge(
        FUNCTION,
        copy.deepcopy(resource.get("Properties", {})),
        logical_id,
        resource.get("IgnoreGlobals"),
    )
    found = []
    if "InlineCode" not in properties:
        own = _requirements_file(template, logical_id, properties.get("CodeUri"))
        if own is not None:
            found.append(Requirements(logical_id, own))
    for layer in properties.get("Layers") or []:
        layer_id = layer.get("Ref") if isinstance(layer, dict) else None
        layer_resource = template.resources.get(layer_id or "")
        if layer_id is None or not layer_resource or layer_resource.get("Type") != LAYER:
            continue  # the template's own check names it when the topology is read
        built = (layer_resource.get("Metadata") or {}).get("BuildMethod")
        if not built and layer_id not in _named(template):
            continue  # sam build does not build it: its ContentUri is the layer as it is
        content = (layer_resource.get("Properties") or {}).get("ContentUri")
        file = _requirements_file(template, layer_id, content)
        if file is not None:
            found.append(Requirements(layer_id, file))
    return found


def _named(template: Template) -> dict[str, str]:
    return template.settings.get("Requirements") or {}


def _requirements_file(template: Template, logical_id: str, folder: object) -> Path | None:
    named = _named(template).get(logical_id)
    if named:
        file = (template.base_dir / named).resolve()
        if not file.is_file():
            raise DependencyError(
                f"{logical_id}: the settings' Requirements file {named} is missing"
            )
        return file
    if not isinstance(folder, str):
        return None  # InlineCode, or a CodeUri the template reader refuses with its reason
    file = (template.base_dir / folder / REQUIREMENTS).resolve()
    return file if file.is_file() else None


def resolve(template: Template, function: Function, deps_dir: Path) -> Resolution:
    """The worker's path for `function`, its requirements installed when not cached yet."""
    requirements = {r.owner: r for r in requirements_of(template, function.logical_id)}
    layer_ids = [r for r in requirements if r != function.logical_id]
    path: list[Path] = [function.code_dir]
    described = []
    own = requirements.get(function.logical_id)
    if own is not None:
        folder, state = install(own, deps_dir)
        path.append(folder)
        described.append(f"{own.file.name} → {_packages(folder)} ({state})")
    for layer_dir in function.layer_dirs:
        path.append(layer_dir)
        owner = _layer_of(template, layer_dir, layer_ids)
        if owner is not None:
            folder, state = install(requirements[owner], deps_dir)
            path.append(folder)
            described.append(
                f"{owner} {requirements[owner].file.name} → {_packages(folder)} ({state})"
            )
    path.append(runtime_packages(deps_dir))
    summary = "; ".join(described) or f"no {REQUIREMENTS}: the runtime's boto3 only"
    return Resolution(
        tuple(path),
        summary,
        _old_botocore_warning(function, path, requirements),
        tuple(r.file for r in requirements.values()),
    )


def _layer_of(template: Template, layer_dir: Path, layer_ids: list[str]) -> str | None:
    """Which of the layers with requirements is mounted from `layer_dir`."""
    for layer_id in layer_ids:
        content = template.resources[layer_id].get("Properties", {}).get("ContentUri")
        root = (template.base_dir / str(content)).resolve()
        if layer_dir in (root, root / "python"):
            return layer_id
    return None


def _packages(folder: Path) -> str:
    count = sum(1 for p in folder.iterdir() if p.name.endswith(".dist-info"))
    return f"{count} package" + ("" if count == 1 else "s")


def _python_tag() -> str:
    return f"{sys.implementation.cache_tag}-{platform.machine()}"


def install(requirements: Requirements, deps_dir: Path) -> tuple[Path, str]:
    """The folder with the file's packages, and "cached" or "installed"."""
    digest = hashlib.sha256(_python_tag().encode() + b"\0" + requirements.file.read_bytes())
    target = deps_dir / requirements.owner / digest.hexdigest()[:16]
    if target.is_dir():
        return target, "cached"
    target.parent.mkdir(parents=True, exist_ok=True)
    # Installed beside, then renamed: a folder that exists is always complete.
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    uv = Path(sys.executable).with_name("uv")
    if uv.exists():  # beside the interpreter, as `make venv` installs it
        command = [str(uv), "pip", "install", "--quiet", "--python", sys.executable]
    else:
        command = [sys.executable, "-m", "pip", "install", "--quiet"]
    command += ["--target", str(partial), "-r", str(requirements.file)]
    done = subprocess.run(  # noqa: S603 - uv or pip, with the template's requirements file
        command,
        cwd=requirements.file.parent,  # where pip resolves the file's relative paths
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DependencyError(
            f"{requirements.owner}: installing {requirements.file.name} failed: {reason}"
        )
    try:
        partial.rename(target)
    except OSError:  # another runtime on the same cache got there first
        shutil.rmtree(partial, ignore_errors=True)
    return target, "installed"


def runtime_packages(deps_dir: Path) -> Path:
    """A folder of links to this environment's boto3 and what it needs: Lambda's runtime."""
    distributions = _closure(RUNTIME_PACKAGES)
    key = ",".join(f"{d.metadata['Name']}=={d.version}" for d in distributions)
    target = deps_dir / "_runtime" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if target.is_dir():
        return target
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for distribution in distributions:
        tops = {Path(f).parts[0] for f in distribution.files or ()}
        for top in tops - {"..", "__pycache__", "bin"}:
            (partial / top).symlink_to(Path(str(distribution.locate_file(top))))
    try:
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _closure(names: tuple[str, ...]) -> list[importlib.metadata.Distribution]:
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in found:
            continue
        distribution = importlib.metadata.distribution(name)
        found[key] = distribution
        for line in distribution.requires or ():
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return sorted(found.values(), key=lambda d: d.metadata["Name"].lower())


def _old_botocore_warning(
    function: Function, path: list[Path], requirements: dict[str, Requirements]
) -> str | None:
    """Names a botocore the function would import that ignores AWS_ENDPOINT_URL*."""
    for entry in path:
        version = _module_version(entry / "botocore" / "__init__.py")
        if version is None:
            continue
        if _release(version) >= ENDPOINT_VARIABLES_BOTOCORE:
            return None
        boto3 = _module_version(entry / "boto3" / "__init__.py")
        owner = next((r for r in requirements.values() if entry.parent.name == r.owner), None)
        if entry == function.code_dir:
            origin = "bundled in its CodeUri"
        elif owner is None:
            origin = f"bundled in the layer at {entry}"
        elif owner.owner == function.logical_id:
            origin = f"from {owner.file.name}"
        else:
            origin = f"from layer {owner.owner}'s {owner.file.name}"
        with_boto3 = f"boto3 {boto3}, " if boto3 else ""
        return (
            f"{function.logical_id}: its botocore {version} ({with_boto3}{origin}) ignores"
            " AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, so its clients would call AWS;"
            " locally those calls are refused. To reach the local stand-ins, pin"
            " boto3>=1.28.0 (botocore>=1.31.0), or drop boto3 from the requirements to use"
            " the one Lambda's runtime provides"
        )
    return None


def _module_version(init: Path) -> str | None:
    try:
        match = _VERSION.search(init.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return match.group(1) if match else None


def _release(version: str) -> tuple[int, ...]:
    numbers = []
    for part in version.split("."):
        digits = re.match(r"\d+", part)
        if digits is None:
            break
        numbers.append(int(digits.group()))
    return tuple(numbers)
