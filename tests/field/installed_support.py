"""fabnet as a user gets it: a wheel built from a copy of the checkout, installed into a fresh
venv, run as the ``fabnet`` command from folders outside the checkout.

The checkout is copied (tracked plus untracked-but-not-ignored files, so uncommitted work is
tested) because building writes ``build/`` and ``*.egg-info`` into the source tree. The new
venv is made without pip and sees the project venv's already-installed dependencies through
one ``.pth`` line naming that venv's site-packages: ``.pth`` files inside a folder added that
way are not processed, so the project's editable fabnet (an import hook installed by such a
file) cannot leak in. ``build_installed`` checks that ``import fabnet`` resolves in the new
venv. A missing module or data file in the wheel therefore fails the command that needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[2]
MIN_SETUPTOOLS = 77  # pyproject.toml's [build-system]: PEP 639 license strings
BUILD_TIMEOUT_S = 300.0
DEPS_PTH = "_fabnet_project_dependencies.pth"
DROPPED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE")


@dataclass(frozen=True)
class InstalledFabnet:
    """An installed fabnet: its ``fabnet`` executable, its venv and the environment to run it
    in (the venv's bin first on PATH, no PYTHONPATH, no ``FABNET_*`` variables)."""

    fabnet: Path
    python: Path
    venv: Path
    site_packages: Path
    wheel: Path
    source: Path  # the copy of the checkout the wheel was built from
    env: dict[str, str]
    build_s: float  # wall time of copy + wheel + venv + install

    def run(
        self, args: Sequence[str | Path], cwd: Path, timeout: float = 60.0, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``fabnet <args>`` in ``cwd``; see ``run``."""
        return run([self.fabnet, *args], cwd, self.env, timeout, check)

    def wheel_files(self) -> list[str]:
        """The paths the wheel holds (``fabnet/...``, ``fabnet-<v>.dist-info/...``)."""
        with zipfile.ZipFile(self.wheel) as archive:
            return archive.namelist()


def run(
    args: Sequence[str | Path],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = 60.0,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in ``cwd`` with exactly ``env``; output captured as text.

    ``cwd`` must be outside the checkout. With ``check`` a non-zero exit fails the test with
    the command, its status and both streams; a timeout fails it with the output so far.
    """
    assert not Path(cwd).resolve().is_relative_to(CHECKOUT), f"{cwd} is inside the checkout"
    command = [str(a) for a in args]
    try:
        done = subprocess.run(
            command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(
            f"{' '.join(command)} still running after {timeout} s\n"
            f"stdout: {exc.stdout!r}\nstderr: {exc.stderr!r}"
        ) from exc
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def source_files(checkout: Path = CHECKOUT) -> list[str]:
    """Tracked and untracked-but-not-ignored files of ``checkout`` that exist, relative."""
    listed = subprocess.run(
        ["git", "-C", str(checkout), "ls-files", "-z", "--cached", "--others",
         "--exclude-standard"],
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [rel for rel in listed.split("\0") if rel and os.path.lexists(checkout / rel)]


def copy_checkout(target: Path, checkout: Path = CHECKOUT) -> None:
    """Copy ``source_files`` into ``target`` (symbolic links stay links)."""
    for rel in source_files(checkout):
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(checkout / rel, destination, follow_symlinks=False)


def _check_build_tools() -> None:
    try:
        major = int(metadata.version("setuptools").split(".")[0])
    except metadata.PackageNotFoundError:
        major = 0
    assert major >= MIN_SETUPTOOLS, (
        f"building the wheel needs setuptools>={MIN_SETUPTOOLS} in {sys.prefix} "
        f"(found {major or 'none'}); run `make venv` (the dev extra installs it)"
    )


def _pip(*args: str | Path) -> None:
    """The project venv's pip, quiet, failing the test with its output."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    done = subprocess.run(
        [str(a) for a in command], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
    )
    assert done.returncode == 0, f"{' '.join(map(str, command))}:\n{done.stdout}\n{done.stderr}"


def user_env(venv: Path) -> dict[str, str]:
    """This process's environment as a user's shell would have it with ``venv`` activated:
    its bin first on PATH, no PYTHON* overrides and no ``FABNET_*`` settings."""
    env = {
        k: v for k, v in os.environ.items()
        if k not in DROPPED_VARIABLES and not k.startswith("FABNET_")
    }  # fmt: skip
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", os.defpath)])
    env["VIRTUAL_ENV"] = str(venv)
    return env


def build_installed(root: Path) -> InstalledFabnet:
    """Copy the checkout to ``root/src``, build its wheel into ``root/dist``, make the venv
    ``root/venv``, install the wheel there (no dependencies) and give it the project venv's
    dependencies. Fails the test if ``import fabnet`` does not resolve inside the new venv.
    """
    started = time.monotonic()
    _check_build_tools()
    src, dist, venv = root / "src", root / "dist", root / "venv"
    copy_checkout(src)
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", dist, src)
    (wheel,) = dist.glob("fabnet-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    # installed before the dependencies are visible, so pip sees no other fabnet
    _pip("--python", python, "install", "--no-deps", wheel)
    site_packages = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    (site_packages / DEPS_PTH).write_text(sysconfig.get_path("purelib") + "\n")
    env = user_env(venv)
    probe = root / "probe"
    probe.mkdir()
    where = run([python, "-c", "import fabnet; print(fabnet.__file__)"], probe, env).stdout
    assert Path(where.strip()).is_relative_to(site_packages), (
        f"import fabnet found {where.strip()}, not the wheel in {site_packages}"
    )
    return InstalledFabnet(
        fabnet=venv / "bin" / "fabnet",
        python=python,
        venv=venv,
        site_packages=site_packages,
        wheel=wheel,
        source=src,
        env=env,
        build_s=time.monotonic() - started,
    )
