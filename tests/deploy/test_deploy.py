"""deploy/: install.sh on a bare Debian 12 root filesystem, and the container image, in podman.

Nothing comes from this development machine but the checkout (mounted read-only), PostgreSQL
(reached over the host's network) and the CA bundle its package registry needs: the bare system
is built by mmdebstrap from the configured apt mirror, and install.sh installs Python, the
locked requirements and everything else inside it. Podman runs the containers as CI_RECIPES.md
says (runc, no default ulimits). Skipped without podman, mmdebstrap and root, except under
CI=true, where .ci/run provides them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, create_pg_database, drop_pg_database, free_port, postgres_url
from tests.waiting import until

HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_CACHE = Path.home() / ".cache" / "pip"
UNITS = ROOT / "deploy" / "systemd"
# The install and the image build install every locked requirement: minutes, not seconds.
INSTALL_TIMEOUT_S = 900
# One worker runs both tests (they share the bare image), the others the rest of the suite.
pytestmark = [pytest.mark.timeout(2 * INSTALL_TIMEOUT_S), pytest.mark.xdist_group("deploy")]


def _require_tools() -> None:
    missing = [tool for tool in ("podman", "mmdebstrap", "runc") if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.append("root")
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"deployment tests need {', '.join(missing)}: .ci/run must install them")
        pytest.skip(f"deployment tests need {', '.join(missing)}")


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory) -> dict[str, str]:
    _require_tools()
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(env: dict[str, str], *args: str, timeout: float = 120, check: bool = True):  # type: ignore[no-untyped-def]
    result = subprocess.run(
        ["podman", "--runtime", "runc", *args], env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    if check and result.returncode != 0:
        output = result.stdout + result.stderr
        raise AssertionError(f"podman {' '.join(args[:3])}… failed:\n{output}")
    return result


def _apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for source in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")):
        match = re.search(r"^URIs:\s*(\S+)", source.read_text(), re.M)
        if match and "security" not in match.group(1):
            return match.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        match = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", listing.read_text(), re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def bare_image(podman_env, tmp_path_factory) -> Iterator[str]:
    """A bare Debian 12 (minbase: no Python, no systemd) imported as an image."""
    rootfs = tmp_path_factory.mktemp("rootfs") / "debian12.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", "--quiet", "bookworm", str(rootfs), _apt_mirror()],
        check=True, timeout=600,
    )  # fmt: skip
    tag = f"localhost/kryptelion-test-debian12:{uuid.uuid4().hex[:8]}"
    podman(podman_env, "import", "--quiet", str(rootfs), tag, timeout=300)
    yield tag
    podman(podman_env, "rmi", "--force", tag, check=False)


@pytest.fixture
def database() -> Iterator[str]:
    url = create_pg_database(postgres_url())
    yield url
    drop_pg_database(url)


class Machine:
    """A long-running container standing in for the VM, on the host's network."""

    def __init__(self, env: dict[str, str], image: str) -> None:
        self.env, self.name = env, f"kryptelion-vm-{uuid.uuid4().hex[:8]}"
        PIP_CACHE.mkdir(parents=True, exist_ok=True)
        podman(
            env, "run", "--detach", "--name", self.name, "--network", "host",
            "--volume", f"{ROOT}:/src:ro", "--volume", f"{HOST_CA}:/run/host-ca.crt:ro",
            "--volume", f"{PIP_CACHE}:/root/.cache/pip", "--env", "PIP_CERT=/run/host-ca.crt",
            image, "sleep", "infinity",
        )  # fmt: skip

    def sh(self, script: str, timeout: float = 120, check: bool = True):  # type: ignore[no-untyped-def]
        return podman(self.env, "exec", self.name, "sh", "-c", script, timeout=timeout, check=check)

    def setting(self, key: str) -> str:
        return self.sh(f"sed -n \"s/^{key}='\\(.*\\)'$/\\1/p\" /etc/kryptelion/env").stdout.strip()

    def start_unit(self, unit: str) -> None:
        """Run the unit's ExecStart as its User with its settings, as systemd would."""
        command = re.search(r"^ExecStart=(.+)$", (UNITS / unit).read_text(), re.M)
        assert command is not None
        podman(
            self.env, "exec", "--detach", self.name, "sh", "-c",
            "set -a; . /etc/kryptelion/env; set +a; cd /var/lib/kryptelion; "
            f"echo $$ > /run/{unit}.pid; exec setpriv --reuid=kryptelion --regid=kryptelion "
            f"--init-groups {command.group(1)} > /run/{unit}.log 2>&1",
        )  # fmt: skip

    def stop_unit(self, unit: str) -> None:
        self.sh(f"kill -TERM $(cat /run/{unit}.pid)")

    def remove(self) -> None:
        podman(self.env, "rm", "--force", "--time", "0", self.name, check=False)


def _get(url: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_install_on_a_bare_debian_serves_a_backtest_upgrades_and_uninstalls(
    podman_env, bare_image, database
):
    vm = Machine(podman_env, bare_image)
    try:
        assert vm.sh("command -v python3", check=False).returncode != 0  # bare indeed
        first = vm.sh(
            f"bash /src/deploy/install.sh --yes --database-url '{database}' --market demo",
            timeout=INSTALL_TIMEOUT_S,
        )
        assert "systemd is not running here" in first.stdout
        assert vm.sh("stat -c '%a %U' /etc/kryptelion/env").stdout.split() == ["600", "root"]
        token = vm.setting("API_TOKEN")
        assert len(token) >= 32 and vm.setting("DATABASE_URL") == database
        assert token not in first.stdout + first.stderr
        ports = {name: free_port() for name in ("WEB_PORT", "BRIDGE_PORT", "DEMO_PORT")}
        vm.sh("".join(f"echo \"{k}='{v}'\" >> /etc/kryptelion/env; " for k, v in ports.items()))
        web = f"http://127.0.0.1:{ports['WEB_PORT']}"

        vm.start_unit("kryptelion-web.service")
        until(lambda: _answers(f"{web}/health"), 180, "/health after the install")
        body = {"symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce", "capital": 1000,
                "start_date": "2024-01-01", "end_date": "2024-01-31"}  # fmt: skip
        assert _get(f"{web}/backtest", body=body)[0] == 401  # the token guards changes
        status, result = _get(f"{web}/backtest", token, body)
        assert status in (200, 201), result
        assert result["metricas"]["trades"] > 0
        run_id = result["id"]
        vm.stop_unit("kryptelion-web.service")
        until(lambda: not _answers(f"{web}/health"), 30, "the web app to stop")

        # A second run upgrades in place: the same settings (the ports added by hand included),
        # the schema at head, the stored backtest still there.
        second = vm.sh("bash /src/deploy/install.sh --yes", timeout=INSTALL_TIMEOUT_S)
        assert vm.setting("API_TOKEN") == token and vm.setting("WEB_PORT") == str(ports["WEB_PORT"])
        assert "database migrations" in second.stdout
        current = vm.sh(
            "set -a; . /etc/kryptelion/env; set +a; setpriv --reuid=kryptelion "
            "--regid=kryptelion --init-groups /opt/kryptelion/venv/bin/python "
            "/opt/kryptelion/app/run.py db current"
        )
        assert "up to date" in current.stdout
        vm.start_unit("kryptelion-web.service")
        until(lambda: _answers(f"{web}/health"), 180, "/health after the upgrade")
        status, stored = _get(f"{web}/backtest/{run_id}")
        assert status == 200 and stored["metricas"]["trades"] == result["metricas"]["trades"]
        vm.stop_unit("kryptelion-web.service")

        # The units are valid for systemd (the VM has it; the bare system gets it here).
        vm.sh("apt-get install -y -qq --no-install-recommends systemd >/dev/null", timeout=300)
        vm.sh("echo 'BOT_ARGS=--strategy sma_cruce --symbol BTCUSDT --interval 1h' "
              "> /etc/kryptelion/bots/ejemplo.env")  # fmt: skip
        units = " ".join(f"/etc/systemd/system/{p.name}" for p in UNITS.glob("*.service"))
        verify = vm.sh(f"systemd-analyze verify {units} kryptelion-bot@ejemplo.service 2>&1",
                       check=False)  # fmt: skip
        assert verify.returncode == 0 and "kryptelion" not in verify.stdout, verify.stdout

        gone = vm.sh("bash /src/deploy/uninstall.sh")
        assert "removed" in gone.stdout
        left = vm.sh("ls -d /opt/kryptelion /etc/kryptelion /var/lib/kryptelion 2>/dev/null; "
                     "id kryptelion 2>/dev/null; true").stdout.split()  # fmt: skip
        assert left == ["/var/lib/kryptelion"]
    finally:
        vm.remove()
    libpq = database.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as connection:  # uninstall keeps the database
        assert connection.execute("SELECT count(*) FROM backtest_runs").fetchone()[0] == 1


def test_the_container_image_builds_on_that_debian_and_answers_health(podman_env, bare_image):
    tag = f"localhost/kryptelion-test:{uuid.uuid4().hex[:8]}"
    podman(
        podman_env, "build", "--format", "docker", "--file", str(ROOT / "deploy" / "Containerfile"),
        "--build-arg", f"BASE={bare_image}", "--build-arg", "PIP_CERT=/run/host-ca.crt",
        "--volume", f"{HOST_CA}:/run/host-ca.crt:ro", "--tag", tag, str(ROOT),
        timeout=INSTALL_TIMEOUT_S,
    )  # fmt: skip
    name = f"kryptelion-image-{uuid.uuid4().hex[:8]}"
    try:
        # Binding every interface (the image's default) is refused without API_TOKEN.
        refused = podman(podman_env, "run", "--rm", "--network", "none", tag, check=False)
        assert refused.returncode != 0 and "API_TOKEN" in refused.stdout + refused.stderr
        ports = {name: free_port() for name in ("WEB_PORT", "BRIDGE_PORT", "DEMO_PORT")}
        podman(
            podman_env, "run", "--detach", "--name", name, "--network", "host",
            "--env", "API_TOKEN=" + uuid.uuid4().hex, "--env", "WEB_HOST=127.0.0.1",
            "--env", "BRIDGE_HOST=127.0.0.1",
            *[arg for k, v in ports.items() for arg in ("--env", f"{k}={v}")], tag,
        )  # fmt: skip
        until(lambda: _answers(f"http://127.0.0.1:{ports['WEB_PORT']}/health"), 180, "/health")
        assert podman(podman_env, "healthcheck", "run", name, check=False).returncode == 0
        user = podman(podman_env, "exec", name, "id", "-un").stdout.strip()
        assert user == "kryptelion"
    finally:
        podman(podman_env, "rm", "--force", "--time", "0", name, check=False)
        podman(podman_env, "rmi", "--force", tag, check=False)
