"""What ships: the job image and the zip Lambdas carry the product's packages and locked,
hash-checked dependencies only; the image runs as a non-root user from a digest-pinned base."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from typing import Any

import pytest

from tests.infra.infra_templates import INFRA, REPO_ROOT, resources_of_type

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
PRODUCT_PACKAGES = ("pipeline", "reconcile", "jobs")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [
        (line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1])
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _requirements(path: str) -> dict[str, list[str]]:
    """name -> hashes, for a pip-compile lock file; fails on any unpinned line."""
    text = re.sub(r"\s*\\\n\s*", " ", (INFRA / path).read_text())
    found: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)((?: --hash=sha256:[0-9a-f]{64})+)", line)
        assert match, f"{path}: not pinned with hashes: {line}"
        found[match[1].lower()] = re.findall(r"sha256:([0-9a-f]{64})", match[3])
    return found


def test_the_base_image_is_pinned_by_digest() -> None:
    instructions = _instructions(DOCKERFILE)
    (base,) = [args for op, args in instructions if op == "FROM"]
    assert base == "python:3.11-slim@${BASE_IMAGE_DIGEST}"
    (arg,) = [args for op, args in instructions if op == "ARG"]
    name, _, digest = arg.partition("=")
    assert name == "BASE_IMAGE_DIGEST"
    assert DIGEST.match(digest), digest
    if digest == PLACEHOLDER_DIGEST:
        # Prepared without registry access: the placeholder must say so where deployers look.
        assert "PLACEHOLDER" in DOCKERFILE
        assert "BASE_IMAGE_DIGEST" in (REPO_ROOT / "docs" / "deploy.md").read_text()


def test_the_image_runs_as_a_non_root_user() -> None:
    users = [args for op, args in _instructions(DOCKERFILE) if op == "USER"]
    assert users, "no USER: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"0", "root"} and group not in {"0", "root"}


def test_the_image_installs_only_the_lock_with_hashes_and_copies_only_the_product() -> None:
    instructions = _instructions(DOCKERFILE)
    (run,) = [args for op, args in instructions if op == "RUN"]
    assert "--require-hashes" in run and "--no-deps" in run
    assert "-r /tmp/requirements-job.txt" in run
    copied = [args.split()[0] for op, args in instructions if op == "COPY"]
    assert copied == ["infra/requirements-job.txt", *(f"{p}/" for p in PRODUCT_PACKAGES)]
    # AND the Lambda runtime interface client (the entry point) comes from the lock too
    assert 'ENTRYPOINT ["python", "-m", "awslambdaric"]' in DOCKERFILE
    # AND the build context itself is only that (no tests, bench, sandbox, out/, .venv)
    ignore = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][:5] == [
        "*",
        "!infra/requirements-job.txt",
        *(f"!{p}/" for p in PRODUCT_PACKAGES),
    ]


def test_the_job_lock_covers_the_project_dependencies_and_the_runtime_client() -> None:
    locked = _requirements("requirements-job.txt")
    declared = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower() for d in declared}
    assert names | {"awslambdaric"} <= set(locked)
    assert all(len(hashes) >= 1 for hashes in locked.values())


def test_the_lambda_lock_covers_its_inputs() -> None:
    locked = _requirements("requirements-lambda.txt")
    inputs = [
        line.strip()
        for line in (INFRA / "requirements-lambda.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert {re.split(r"[<>=!~ ]", i, maxsplit=1)[0].lower() for i in inputs} <= set(locked)


def test_zip_functions_are_built_by_the_makefile_with_the_pipeline_only(
    templates: dict[str, Any],
) -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    (targets,) = re.findall(r"^((?:build-\w+ ?)+):", makefile, re.M)
    zip_functions = {
        name
        for stack in ("source", "destination")
        for name, resource in resources_of_type(
            templates[stack], "AWS::Serverless::Function"
        ).items()
        if resource["Metadata"].get("BuildMethod") == "makefile"
    }
    assert zip_functions == {"PersistFunction", "ReplicatorFunction", "PendingFunction"}
    assert set(targets.split()) == {f"build-{name}" for name in zip_functions}
    recipe = makefile.split(targets + ":", 1)[1].split("\n\n", 1)[0]
    assert "--require-hashes" in recipe and "-r infra/requirements-lambda.txt" in recipe
    assert re.findall(r"cp -R (\S+)", recipe) == ["pipeline"]


# Every first-party module the image's entry points import must be among the shipped packages.
_BLOCK_UNSHIPPED = """
import importlib.abc, sys
class Unshipped(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"sandbox", "tests", "bench", "notebooks"}:
            raise ImportError(f"{name} is not in the image")
        return None
sys.meta_path.insert(0, Unshipped())
"""


@pytest.mark.parametrize(
    "modules",
    [
        ["jobs.nightly", "jobs.shard", "jobs.runlock"],
        ["pipeline.persist", "pipeline.replicate", "pipeline.pending"],
    ],
)
def test_entry_points_import_without_unshipped_packages(modules: list[str]) -> None:
    code = _BLOCK_UNSHIPPED + "".join(f"import {m}\n" for m in modules)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_unshipped_import_blocker_can_fail() -> None:
    code = _BLOCK_UNSHIPPED + "import sandbox.emulation\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0 and "not in the image" in result.stderr
