"""What CI can prove without AWS: the template lints, builds for Lambda, passes a policy scan."""

from __future__ import annotations

import json
import re
from importlib import metadata
from pathlib import Path

import pytest

from tests.infra.stack import REPO_ROOT, TEMPLATE, load_template, run_tool, translate

FUNCTIONS = {
    "IngestFunction": "ingest",
    "StoreFunction": "store",
    "MigrateFunction": "migrate",
    "AccountsFunction": "accounts",
    "EmailFunction": "email",
    "AggregateFunction": "aggregate",
    "ManageFunction": "manage",
    "MaintainFunction": "maintain",
}


def locked_pins() -> dict[str, str]:
    """name -> version for every line of requirements.lock that applies on Lambda's Python 3.13."""
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*(.+))?$", line)
        if match:
            name, version, marker = match.groups()
            if marker is None or _applies_on_lambda(marker):
                pins[_normal(name)] = version
    return pins


def _applies_on_lambda(marker: str) -> bool:
    from packaging.markers import Marker

    return Marker(marker).evaluate(
        {
            "python_version": "3.13",
            "python_full_version": "3.13.0",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "platform_machine": "aarch64",
            "implementation_name": "cpython",
            "platform_python_implementation": "CPython",
            "os_name": "posix",
        }
    )


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_sam_validate_lint(sam):
    result = run_tool(
        sam, "validate", "--lint", "--region", "us-east-1", "--template", str(TEMPLATE)
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_sam_build_packs_each_function_with_only_its_handler_and_its_modules(sam_build: Path):
    for name, folder in FUNCTIONS.items():
        built = {
            p.relative_to(sam_build / name).as_posix()
            for p in (sam_build / name).rglob("*")
            if p.is_file()
        }
        # app.py and the modules beside it (ingest's answers.py), each as in the repository.
        modules = sorted((REPO_ROOT / "functions" / folder).glob("*.py"))
        expected = {p.name for p in modules}
        if name == "MigrateFunction":
            expected |= {f"migrations/{p.name}" for p in (REPO_ROOT / "migrations").glob("*.sql")}
        if name == "ManageFunction":
            expected |= {"openapi.json"}  # served at GET /api/openapi.json
        assert built == expected, name
        assert "app.py" in expected, name
        for module in modules:
            assert (sam_build / name / module.name).read_bytes() == module.read_bytes(), module


@pytest.mark.slow
def test_sam_build_layer_holds_the_tested_versions_for_arm64_python313(sam_build: Path):
    site = sam_build / "SluiceLayer" / "python"
    built = {}
    for info in site.glob("*.dist-info"):
        name, version = info.name.removesuffix(".dist-info").rsplit("-", 1)
        built[_normal(name)] = version
    pins = locked_pins()

    # Exactly the lock: nothing missing, nothing extra...
    assert built == pins
    # ...and the lock is what the tests ran with.
    for name, version in pins.items():
        assert metadata.version(name) == version, name
    # The sluice package itself, as in the repository.
    layer = REPO_ROOT / "layers"
    for source in (layer / "sluice").rglob("*.py"):
        assert (site / source.relative_to(layer)).read_bytes() == source.read_bytes()
    # Compiled extensions are for Lambda's platform, not this machine's.
    extensions = list(site.rglob("*.so"))
    assert extensions
    for extension in extensions:
        assert "x86_64" not in extension.name
        assert extension.read_bytes()[18] == 0xB7, f"{extension} is not an aarch64 ELF"


@pytest.mark.slow
def test_sam_build_template_points_at_the_built_artifacts(sam_build: Path):
    from samtranslator.yaml_helper import yaml_parse

    built = yaml_parse((sam_build / "template.yaml").read_text())["Resources"]
    for name in FUNCTIONS:
        assert built[name]["Properties"]["CodeUri"] == name
    assert built["SluiceLayer"]["Properties"]["ContentUri"] == "SluiceLayer"


CHECKOV_CONFIG = REPO_ROOT / ".checkov.yaml"


def _checkov(checkov: str, path: Path, *, skips: bool = True, cwd: Path = REPO_ROOT) -> dict:
    """checkov's report on one file, with .checkov.yaml's skips or (skips=False) none."""
    options = ["--config-file", str(CHECKOV_CONFIG)] if skips else []
    result = run_tool(
        checkov,
        "--file",
        str(path),
        *options,
        "--framework",
        "cloudformation",
        "--output",
        "json",
        "--skip-download",
        "--quiet",
        "--compact",
        cwd=cwd,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return report[0] if isinstance(report, list) else report


def skipped_checks() -> dict[str, tuple[str, str]]:
    """.checkov.yaml's skip-check: check id -> (scope, reason), from the comment above each."""
    skipped: dict[str, tuple[str, str]] = {}
    comment = ""
    inside = False
    for line in CHECKOV_CONFIG.read_text().splitlines():
        text = line.strip()
        if not line.startswith(" "):
            inside = text == "skip-check:"
        elif inside and text.startswith("# ") and not text.startswith("# ---"):
            comment = text.removeprefix("# ")
        elif inside and text.startswith("- "):
            scope, _, reason = comment.partition(": ")
            skipped[text.removeprefix("- ")] = (scope, reason)
            comment = ""
    return skipped


def _failures(report: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]


def _skips_without_reason(report: dict) -> list[str]:
    return [
        f"{c['check_id']} {c['resource']}"
        for c in report.get("results", {}).get("skipped_checks", [])
        if len((c.get("check_result", {}).get("suppress_comment") or "").strip()) < 20
    ]


@pytest.mark.slow
def test_checkov_finds_nothing_unexplained_in_the_template(checkov):
    report = _checkov(checkov, TEMPLATE)

    assert report.get("summary", {}).get("passed", 0) > 0, report
    assert _failures(report) == []
    assert _skips_without_reason(report) == []


@pytest.mark.slow
def test_checkov_finds_nothing_unexplained_in_what_sam_generates(checkov, tmp_path):
    """Roles, event source mappings and the API stage exist only after the transform."""
    translated = tmp_path / "translated.json"
    translated.write_text(json.dumps(translate(load_template(), {"Environment": "prod"})))
    report = _checkov(checkov, translated)

    assert report.get("summary", {}).get("passed", 0) > 0, report
    assert _failures(report) == []
    assert _skips_without_reason(report) == []


def test_every_skipped_check_has_its_scope_and_reason_once():
    skipped = skipped_checks()
    assert len(skipped) >= 10
    for check, (scope, reason) in skipped.items():
        assert scope and len(reason) >= 40, f"{check} has no reason in .checkov.yaml"
    assert "checkov:" not in TEMPLATE.read_text(), "reasons go in .checkov.yaml, once"


@pytest.mark.slow
def test_checkov_skips_hide_nothing_beyond_their_scope(checkov, tmp_path):
    """Without the skips, each skipped check fails only where .checkov.yaml says it may.

    A scope is a resource type (every one of them) or logical ids; a new bucket
    without versioning, say, fails here instead of passing under ArchiveBucket's skip.
    """
    # Run from elsewhere: checkov would read .checkov.yaml from the working directory.
    report = _checkov(checkov, TEMPLATE, skips=False, cwd=tmp_path)
    failing: dict[str, set[str]] = {}
    for check in report.get("results", {}).get("failed_checks", []):
        failing.setdefault(check["check_id"], set()).add(check["resource"])
    skipped = skipped_checks()

    assert set(failing) - set(skipped) == set(), "checks failing that no skip explains"
    for check, (scope, _) in skipped.items():
        resources = failing.get(check, set())
        if not resources:
            continue  # passes today; the reason stays for the checkov that flags it
        if "::" in scope:
            assert {r.split(".")[0] for r in resources} == {scope}, check
        else:
            assert {r.split(".", 1)[1] for r in resources} == set(scope.split(", ")), check
