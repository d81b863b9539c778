"""The model registry every host reads: GTO's git tags in a git repository the hosts share.

The DVC ecosystem's convention (the package ``gto``, "git tag ops"): a version of a model is an
annotated tag ``<category>@v<N>.0.0`` on the commit that records it (GTO's versions are semantic;
each promotion is a new major version N), and a stage assignment is a tag
``<category>#prod#<K>`` (the K-th assignment of ``prod``) on the same commit; ``gto show``,
``gto history`` and ``gto which <category> prod`` read them. Here the registry is its own git
repository (docs/orchestration.md: a bare repository on the server host, reached over SSH), laid
out like a project's ``runs/`` folder so that the same readers work on it::

    runs/<category>/accepted/   dvc.lock, params.yaml, metrics.json, run.json of the prod model
    runs/history/<run_id>.json  every host's run records

The model files themselves are DVC outputs in the shared DVC remote: ``dvc.lock`` names them by
hash, so a version is fetched with ``dvc pull`` (:func:`fetch_bundle`).

Publishing is one atomic ``git push`` of the branch and both tags. A promotion names the version
it was judged against (``expected``); if ``prod`` moved since (another host promoted the same
category), the promotion is refused with :class:`PromotionLost` and the registry is untouched:
of two concurrent promotions of one category exactly one wins. A push refused only because
another category moved ``main`` is rebased and retried.

Only ``git`` and ``python -m dvc`` run here, as subprocesses (the library imports no DVC).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from diffad.core.errors import DiffadError

STAGE = "prod"
BRANCH = "main"
ACCEPTED_FILES = ("dvc.lock", "params.yaml", "metrics.json", "run.json")  # small; the rest is in DVC
BUNDLE = "models/bundle"
PUSH_ATTEMPTS = 5
_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")  # what GTO accepts as an artifact name
_IDENTITY = {
    "GIT_AUTHOR_NAME": "diffad",
    "GIT_AUTHOR_EMAIL": "diffad@localhost",
    "GIT_COMMITTER_NAME": "diffad",
    "GIT_COMMITTER_EMAIL": "diffad@localhost",
}


class RegistryError(DiffadError):
    """The registry could not be read or written (git's own message attached)."""


class PromotionLost(RegistryError):
    """Another host promoted the category since this run was judged; nothing was published."""


@dataclass(frozen=True)
class Version:
    """One registered version of a category."""

    category: str
    number: int
    commit: str

    @property
    def tag(self) -> str:
        return f"{self.category}@v{self.number}.0.0"


def check_name(category: str) -> str:
    if not _NAME.match(category):
        raise RegistryError(f"category {category!r}: a registry name is lower-case letters, digits, - and _")
    return category


def git(
    args: Sequence[str], cwd: Path, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    full = {"GIT_TERMINAL_PROMPT": "0", **os.environ, **_IDENTITY, **(env or {})}
    done = subprocess.run(["git", *args], cwd=cwd, env=full, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RegistryError(f"git {' '.join(args)} failed in {cwd}: {(done.stderr or done.stdout).strip()}")
    return done


def sync(url: str, clone: Path) -> Path:
    """Make ``clone`` a copy of the registry at ``url`` as it is now (cloned the first time)."""
    if not (clone / ".git").exists():
        clone.parent.mkdir(parents=True, exist_ok=True)
        git(["clone", "--quiet", url, str(clone)], clone.parent)
    git(["fetch", "--quiet", "--prune", "--prune-tags", "--force", "origin"], clone)
    if git(["rev-parse", "--verify", "--quiet", f"origin/{BRANCH}"], clone, check=False).returncode == 0:
        git(["checkout", "--quiet", "-B", BRANCH, f"origin/{BRANCH}"], clone)
        git(["reset", "--quiet", "--hard", f"origin/{BRANCH}"], clone)
    else:  # a new, empty registry
        git(["checkout", "--quiet", "--orphan", BRANCH], clone, check=False)
    return clone


def _tags(clone: Path, pattern: str) -> dict[str, str]:
    out = git(["tag", "--list", pattern, "--format=%(refname:short) %(*objectname)%(objectname)"], clone)
    tags = {}
    for line in out.stdout.splitlines():
        name, _, obj = line.partition(" ")
        tags[name] = obj[:40]  # the tagged commit (annotated: %(*objectname) comes first)
    return tags


def versions(clone: Path, category: str) -> list[Version]:
    """Every registered version of ``category``, oldest first."""
    found = []
    for name, commit in _tags(clone, f"{check_name(category)}@v*").items():
        if match := _SEMVER.match(name.rpartition("@")[2]):
            found.append(Version(category, int(match.group(1)), commit))
    return sorted(found, key=lambda v: v.number)


def prod_version(clone: Path, category: str) -> Version | None:
    """The version whose commit carries the latest ``<category>#prod#K`` tag (GTO's rule)."""
    assignments = _tags(clone, f"{check_name(category)}#{STAGE}#*")
    if not assignments:
        return None
    latest = max(assignments, key=lambda name: int(name.rpartition("#")[2]))
    by_commit = {v.commit: v for v in versions(clone, category)}
    return by_commit.get(assignments[latest])


def _push(clone: Path, refs: Sequence[str]) -> subprocess.CompletedProcess:
    return git(
        ["push", "--quiet", "--atomic", "origin", f"HEAD:refs/heads/{BRANCH}", *refs], clone, check=False
    )


def publish(
    url: str,
    clone: Path,
    category: str,
    files: Mapping[str, Path],
    expected: int | None,
    message: str,
) -> Version:
    """Register ``files`` (``runs/<category>/accepted/...`` names -> local files) as the next version
    of ``category`` and assign it ``prod``, if ``prod`` is still version ``expected`` (None: none
    yet); else :class:`PromotionLost`. Returns the new version."""
    check_name(category)
    for _attempt in range(PUSH_ATTEMPTS):
        sync(url, clone)
        current = prod_version(clone, category)
        if (current.number if current else None) != expected:
            raise PromotionLost(
                f"{category}: prod is {current.tag if current else 'unset'} now, not the "
                f"{f'v{expected}.0.0' if expected else 'empty registry'} this run was judged "
                "against (another host promoted it first); not promoted"
            )
        target = clone / "runs" / category / "accepted"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name, source in files.items():
            shutil.copy2(source, target / name)
        git(["add", "--all", "runs"], clone)
        git(["commit", "--quiet", "--allow-empty", "-m", message], clone)
        number = max([v.number for v in versions(clone, category)], default=0) + 1
        version = Version(category, number, git(["rev-parse", "HEAD"], clone).stdout.strip())
        assignment = f"{category}#{STAGE}#{len(_tags(clone, f'{category}#{STAGE}#*')) + 1}"
        # GTO orders events by their tags' dates (whole seconds): keep them strictly increasing
        dates = git(["for-each-ref", "--format=%(creatordate:unix)", f"refs/tags/{category}*"], clone)
        when = max([int(time.time()), *(int(t) + 1 for t in dates.stdout.split())])
        semver = version.tag.partition("@")[2]
        for tag, text in (
            (version.tag, f"Registering artifact {category} version {semver}"),
            (assignment, f"Assigning stage {STAGE} to artifact {category} version {semver}"),
        ):
            git(["tag", "-a", tag, "-m", text], clone, env={"GIT_COMMITTER_DATE": f"{when} +0000"})
            when += 1
        pushed = _push(clone, [f"refs/tags/{version.tag}", f"refs/tags/{assignment}"])
        if pushed.returncode == 0:
            return version
        git(["tag", "-d", version.tag, assignment], clone, check=False)  # retry from the registry's state
    raise RegistryError(
        f"{category}: could not push to {url} after {PUSH_ATTEMPTS} attempts: {pushed.stderr.strip()}"
    )


def record(url: str, clone: Path, files: Mapping[str, Path], message: str) -> None:
    """Add run records (``runs/history/...`` names -> local files) to the registry's ``main``."""
    for _attempt in range(PUSH_ATTEMPTS):
        sync(url, clone)
        for name, source in files.items():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
        git(["add", "--all", "runs"], clone)
        git(["commit", "--quiet", "--allow-empty", "-m", message], clone)
        pushed = _push(clone, [])
        if pushed.returncode == 0:
            return
    raise RegistryError(f"could not push run records to {url}: {pushed.stderr.strip()}")


def accepted_files(version: Version, clone: Path) -> dict[str, bytes]:
    """The registered files of ``version`` as committed ({name: bytes})."""
    prefix = f"runs/{version.category}/accepted"
    return {
        name: git(["show", f"{version.commit}:{prefix}/{name}"], clone).stdout.encode()
        for name in ACCEPTED_FILES
        if git(["cat-file", "-e", f"{version.commit}:{prefix}/{name}"], clone, check=False).returncode == 0
    }


def local_clone(project: Path) -> Path:
    """Where a host keeps its copy of the registry (``runs/`` is git-ignored)."""
    return project / "runs" / ".registry"


def fetched_bundle(project: Path, version: Version) -> Path:
    """Where :func:`fetch_bundle` keeps ``version``'s bundle in ``project``."""
    return project / "models" / "registry" / version.tag / "bundle"


def fetch_bundle(project: Path, url: str, category: str, clone: Path | None = None) -> tuple[Version, Path]:
    """The ``prod`` model of ``category``: its bundle pulled from the project's DVC remote into
    ``models/registry/<category>@v<N>.0.0/bundle`` of ``project`` (kept: a second call reuses it).

    DVC pulls it in a private copy of the project's ``dvc.yaml`` and DVC configuration with the
    registered ``dvc.lock`` and ``params.yaml``, sharing the project's DVC cache, so the checkout's
    own outputs are never touched."""
    project = project.resolve()
    clone = sync(url, clone or local_clone(project))
    version = prod_version(clone, category)
    if version is None:
        raise RegistryError(f"{category}: no version in stage {STAGE} in the registry {url}")
    served = fetched_bundle(project, version)
    if served.is_dir():
        return version, served
    served.parent.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="diffad-fetch-", dir=served.parent.parent) as tmp:
        work = Path(tmp)
        files = accepted_files(version, clone)
        for name in ("dvc.lock", "params.yaml"):
            if name not in files:
                raise RegistryError(f"{version.tag}: {name} missing from the registry")
            (work / name).write_bytes(files[name])
        shutil.copy2(project / "dvc.yaml", work / "dvc.yaml")
        (work / ".dvc").mkdir()
        for name in ("config", "config.local"):
            if (project / ".dvc" / name).exists():
                shutil.copy2(project / ".dvc" / name, work / ".dvc" / name)
        cache = _dvc(["cache", "dir"], project).stdout.strip()
        for key, value in (("core.no_scm", "true"), ("cache.dir", cache)):
            _dvc(["config", "--local", key, value], work)
        _dvc(["pull", "--quiet", BUNDLE], work)
        served.parent.mkdir(parents=True, exist_ok=True)
        staged = served.parent / f".{served.name}.incoming"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(work / BUNDLE, staged)
        staged.rename(served)
    return version, served


def _dvc(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RegistryError(f"dvc {' '.join(args)} failed in {cwd}: {(done.stderr or done.stdout).strip()}")
    return done
