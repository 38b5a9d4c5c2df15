"""The house a newcomer walks into: a README that stays a front page, docs whose links
lead somewhere, a code map naming every function, and the contributor's tools (pre-commit,
CI) running what `make test` runs."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import REPO_ROOT
from tests.test_code_checks import RUFF_CHECKS

DOCUMENTS = [
    REPO_ROOT / "README.md",
    REPO_ROOT / "CONTRIBUTING.md",
    REPO_ROOT / "CHANGELOG.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchors(document: Path) -> set[str]:
    """GitHub's ids for a Markdown file's headings (code blocks skipped)."""
    found, in_code = set(), False
    for line in document.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            heading = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", heading).replace(" ", "-"))
    return found


def links(document: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.DOTALL)
    return [link for link in LINK.findall(text) if not re.match(r"[a-z]+:", link)]


def test_every_link_in_the_docs_leads_to_a_file_and_heading_that_exist():
    broken = []
    for document in DOCUMENTS:
        for link in links(document):
            path, _, anchor = link.partition("#")
            target = (document.parent / path).resolve() if path else document
            if not target.exists():
                broken.append(f"{document.name}: {link} (no such file)")
            elif anchor and anchor not in anchors(target):
                broken.append(f"{document.name}: {link} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_is_a_front_page_whose_map_reaches_every_docs_page():
    readme = (REPO_ROOT / "README.md").read_text()

    assert len(readme.splitlines()) < 150, "the README grows again: move detail into docs/"
    pages = {path.name for path in (REPO_ROOT / "docs").glob("*.md")}
    linked = {Path(link).name for link in links(REPO_ROOT / "README.md") if "docs/" in link}
    assert pages <= linked, f"docs pages the README's map does not name: {pages - linked}"


def test_the_code_map_and_the_readme_picture_name_every_function():
    functions = {path.name for path in (REPO_ROOT / "functions").iterdir() if path.is_dir()}
    design = (REPO_ROOT / "docs" / "design.md").read_text()
    code_map = design.split("## How it is built", 1)[1].split("```")[1]
    picture = (REPO_ROOT / "README.md").read_text().split("## What runs where", 1)[1]
    picture = picture.split("```")[1]

    assert {f for f in functions if not re.search(rf"^\s+{f}/", code_map, re.M)} == set()
    assert {f for f in functions if not re.search(rf"\b{f}\b", picture)} == set()


def test_pre_commit_runs_make_tests_ruff_checks_at_the_locked_version():
    config = yaml.safe_load((REPO_ROOT / ".pre-commit-config.yaml").read_text())
    locked = re.search(
        r"^ruff==(\S+)", (REPO_ROOT / "requirements-dev.lock").read_text(), re.M
    ).group(1)
    (ruff,) = [repo for repo in config["repos"] if repo["repo"].endswith("/ruff-pre-commit")]

    assert ruff["rev"] == f"v{locked}"
    hooks = {hook["id"]: hook.get("args", []) for hook in ruff["hooks"]}
    # the same arguments as make test's commands, less the path pre-commit passes itself
    assert hooks == {
        "ruff-check": RUFF_CHECKS["ruff-check"][2:-1],
        "ruff-format": RUFF_CHECKS["ruff-format"][2:-1],
    }


def test_the_ci_workflow_runs_ci_run_which_runs_make_test():
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text())
    (job,) = workflow["jobs"].values()
    runs = [step["run"] for step in job["steps"] if "run" in step]
    python = [
        step["with"]["python-version"]
        for step in job["steps"]
        if "setup-python" in step.get("uses", "")
    ]

    assert job["runs-on"].startswith("ubuntu")
    assert python == ["3.11"]
    assert runs == ["bash .ci/run"]
    commands = [
        line
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]
