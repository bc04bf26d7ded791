"""What a release ships and the linters Galaxy and the Ansible community run on it.

The built tarball holds no build output (a fake VDDK, caches, the venv), the
changelog is antsibull-changelog's, ansible-lint's production profile passes
over the whole checkout, and galaxy-importer accepts the tarball with no
warning.
"""
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from collection_tarball import built_tarball
from playbook import COLLECTIONS_PATH, REPO_ROOT

BIN = os.path.dirname(sys.executable)
GALAXY_IMPORTER_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "galaxy-importer.cfg")
# Build output, caches and binaries that must never reach the released artefact.
NEVER_SHIPPED = (".venv/", ".build/", "build/", ".hypothesis/", ".pytest_cache/", ".ansible/", ".git/", ".ci/",
                 "tests/vcsim/bin/", "tests/vddk_double/build/", "tests/output/", "bench/results/")


def tool_environment(**extra):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), NO_COLOR="1")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    return built_tarball(tmp_path_factory)


@pytest.fixture(scope="module")
def tarball_names(tarball):
    with tarfile.open(tarball) as archive:
        return [member.name + ("/" if member.isdir() else "") for member in archive.getmembers()]


def test_tarball_holds_no_build_output(tarball_names):
    def found(condition):
        return [name for name in tarball_names if condition(name)]

    assert not found(lambda name: name.startswith(NEVER_SHIPPED))
    assert not found(lambda name: re.search(r"\.so(\.[0-9]+)*$", name))  # libvixDiskLib.so.8 is the double's
    assert not found(lambda name: "__pycache__" in name or name.endswith((".pyc", ".o", ".tar.gz")))
    assert not found(lambda name: any(part.startswith(".") for part in name.rstrip("/").split("/")))
    for required in ("COPYING", "MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml",
                     "changelogs/changelog.yaml", "plugins/modules/vm_crypto_info.py"):
        assert required in tarball_names


def test_tarball_ships_only_files_git_would_commit(tarball_names):
    """Anything .gitignore keeps out of the repository stays out of the release too."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, check=True).stdout.decode().split("\0")
    committable = set(filter(None, listed)) | {"MANIFEST.json", "FILES.json"}
    assert [name for name in tarball_names if not name.endswith("/") and name not in committable] == []


def test_gitignore_lists_no_tracked_file():
    ignored_but_tracked = subprocess.run(["git", "ls-files", "--cached", "--ignored", "--exclude-standard"],
                                         cwd=REPO_ROOT, stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert ignored_but_tracked.stdout.split() == []


def test_copying_is_the_license_galaxy_yml_declares(tarball):
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
        copying = archive.extractfile("COPYING").read().decode()
    assert manifest["collection_info"]["license"] == ["GPL-3.0-or-later"]
    assert "GNU GENERAL PUBLIC LICENSE" in copying and "Version 3, 29 June 2007" in copying
    assert "END OF TERMS AND CONDITIONS" in copying
    for url in ("repository", "documentation", "homepage", "issues"):
        assert "example.invalid" not in (manifest["collection_info"].get(url) or "")


def test_changelog_fragments_and_changelog_yaml_pass_antsibull_lint():
    for command in (["lint"], ["lint-changelog-yaml", os.path.join("changelogs", "changelog.yaml")]):
        run = subprocess.run([os.path.join(BIN, "antsibull-changelog")] + command, cwd=REPO_ROOT,
                             env=tool_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             universal_newlines=True, timeout=120, check=False)
        assert (run.returncode, run.stdout) == (0, ""), command


def test_ansible_lint_production_profile_passes_over_the_whole_checkout():
    """Playbooks, roles, meta, changelogs and galaxy.yml, from the collection root.

    --offline keeps ansible-lint from installing a copy of the collection
    under .ansible/; the playbooks resolve vmcrypt.backup through the link
    `make collection` puts in .build/collections, as the other tests do.
    """
    run = subprocess.run([os.path.join(BIN, "ansible-lint"), "--offline", "--profile", "production",
                          "--format", "codeclimate"],
                         cwd=REPO_ROOT, env=tool_environment(ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    findings = ["%s %s:%s %s" % (issue["check_name"], issue["location"]["path"],
                                 issue["location"].get("lines", {}).get("begin"), issue["description"])
                for issue in json.loads(run.stdout or "[]")]
    # The one finding .ansible-lint turns into a warning, until galaxy.yml names a public repository.
    assert [finding for finding in findings if not finding.startswith("galaxy[no-repository] galaxy.yml")] == []


def test_galaxy_importer_finds_nothing_but_the_missing_repository_url(tarball, tmp_path):
    """galaxy-importer as Galaxy runs it on an upload, minus ansible-test (see galaxy-importer.cfg).

    galaxy.yml names no repository until the project has a public home (ansible-lint's
    galaxy[no-repository] warning says so too); every other check of the importer must pass.
    """
    with tarfile.open(tarball) as archive:
        manifest = json.load(archive.extractfile("MANIFEST.json"))
    has_repository = bool(manifest["collection_info"].get("repository"))
    if not has_repository:
        # Galaxy refuses a collection without a repository URL before it looks at anything else;
        # import a copy that has one so that every other check still runs, then report the gap.
        tarball = with_repository_url(tarball, tmp_path / "with-repository", "https://repository.unset/")
    tmp = tmp_path / "importer"
    tmp.mkdir()
    run = subprocess.run([sys.executable, "-m", "galaxy_importer.main", tarball], cwd=str(tmp),
                         env=tool_environment(GALAXY_IMPORTER_CONFIG=GALAXY_IMPORTER_CONFIG,
                                              GALAXY_IMPORTER_TMP_ROOT_DIR=str(tmp),
                                              GALAXY_IMPORTER_ANSIBLE_LOCAL_TMP=str(tmp / "ansible")),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=600,
                         check=False)
    complaints = [line for line in run.stdout.splitlines() if line.startswith(("WARNING", "ERROR", "CRITICAL"))]
    assert complaints == [], "\n".join(complaints)
    assert run.returncode == 0 and "Importer processing completed successfully" in run.stdout, run.stdout


def with_repository_url(tarball, workdir, url):
    """A copy of the tarball whose MANIFEST.json names a repository (FILES.json does not cover MANIFEST.json)."""
    workdir.mkdir()
    copy = workdir / os.path.basename(tarball)
    with tarfile.open(tarball) as source, tarfile.open(str(copy), "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name == "MANIFEST.json":
                manifest = json.load(data)
                manifest["collection_info"]["repository"] = url
                payload = json.dumps(manifest, indent=4).encode()
                member.size = len(payload)
                data = io.BytesIO(payload)
            target.addfile(member, data)
    return str(copy)
