"""Both READMEs, run as written, one step after another, on a fresh checkout with nothing running.

The examples are the ```bash and ```python blocks, in the order they appear (untagged and
```json blocks are the layout tree, `.env` lines and request bodies; inline code is prose). Each
README runs in its own fresh copy of the checkout (`git ls-files`, uncommitted files included: no
`config/.env`, no `data/*.db`) with a plain environment: no PYTHONPATH and no Kryptelion setting
except free DEMO_PORT / WEB_PORT / BRIDGE_PORT, so parallel tests never clash.

- A Python block runs in its own `python -c` with the checkout as the current folder.
- A command line runs as a subprocess with a deadline and must exit 0 with no traceback; `a && b`
  runs `a` then `b`. Lines in SKIP cannot run here and are skipped, each for the reason given.
- A server line (SERVERS) is started and waited for until it answers; it keeps running, as in a
  second terminal, until a later line starts a server that needs one of its ports (which stops
  it first, as a user would) or the README ends. Servers stop with SIGTERM: status 0, no
  traceback.
- `curl` lines run against the running `python run.py` (both READMEs say so); when none runs, one
  is started. `localhost:5000` becomes the free web port.
- `python run.py bot …` runs until Ctrl-C: once its bot runs (it logs "running on"), the test
  presses Ctrl-C and expects a clean stop.
- `websocket/test_ws_connection.py` must print a kline line; without a duration it runs 30 s, so it
  is stopped with SIGTERM once it has printed one.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.app.test_readme_curl import check_curl
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
# Where CI keeps the user's own README (Spanish), beside the repository.
USER_README = ROOT.parent / "shared" / "USER_README.md"
PORT_KEYS = ("DEMO_PORT", "WEB_PORT", "BRIDGE_PORT")

BOT_LINE = re.compile(r"^bot \d+ '")
# Command lines that cannot run here, matched on their leading words, each with the reason.
SKIP = {
    ("git", "clone"): "needs the network; the test already runs in a fresh copy of the checkout",
    ("cd", "trading_bot"): "the clone's folder; here the fresh checkout is the current folder",
    ("python", "-m", "venv"): "the test already runs inside the project's virtualenv",
    ("source",): "activates a virtualenv; the test already runs inside one",
    (".",): "activates a virtualenv; the test already runs inside one",
    ("pip", "install"): "installs from PyPI: needs the network (the test's virtualenv has them)",
    ("pip-compile",): "resolves the locks against PyPI: needs the network",
    ("pytest",): "the test suite itself",
    ("python", "-m", "pytest"): "the test suite itself",
    ("sudo",): "changes the machine as root; tests/deploy runs it in a bare Debian container",
    ("docker",): "no Docker engine here; tests/deploy builds and runs the image with podman",
    ("podman",): "tests/deploy builds and runs the image (podman with runc, CI_RECIPES.md)",
}
# Names a README fragment takes as given, defined the way the README's earlier steps make them.
_JANUARY = (
    "from config.settings import load_settings\n"
    "from core.repository import Database\n"
    "velas = Database(load_settings().database_url).candles.read_frame(\n"
    "    'BTCUSDT', '1h', 1_704_067_200_000, 1_706_745_600_000)  # January 2024, stored above\n"
    "assert len(velas) == 744, len(velas)\n"
)
PRELUDES = {"ejecutar_backtest(velas": _JANUARY, "optimizar(velas": _JANUARY}
KLINE_LINE = re.compile(r"^(open  |CLOSED) BTCUSDT 1m \d+ o=", re.MULTILINE)
COMMAND_TIMEOUT_S = 90
READY_TIMEOUT_S = 30


@dataclass(frozen=True)
class ServerKind:
    """A long-running command: the ports it binds, whether it may add a demo exchange, its probe."""

    ports: frozenset[str]
    may_start_demo: bool
    probe: tuple[str, str]  # (port key, path) that answers once it serves


SERVERS = {
    ("run.py",): ServerKind(frozenset({"WEB_PORT", "BRIDGE_PORT"}), True, ("WEB_PORT", "/health")),
    ("run.py", "web"): ServerKind(frozenset({"WEB_PORT"}), True, ("WEB_PORT", "/health")),
    ("run.py", "bridge"): ServerKind(frozenset({"BRIDGE_PORT"}), True, ("BRIDGE_PORT", "/health")),
    ("-m", "wsbridge"): ServerKind(frozenset({"BRIDGE_PORT"}), True, ("BRIDGE_PORT", "/health")),
    ("run.py", "demo-exchange"): ServerKind(
        frozenset({"DEMO_PORT"}), False, ("DEMO_PORT", "/fapi/v1/ping")
    ),
}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every ```bash and ```python block, in order."""
    blocks = re.findall(r"^[ \t]*```(\w*)[ \t]*\n(.*?)^[ \t]*```", text, re.MULTILINE | re.DOTALL)
    return [(lang, code) for lang, code in blocks if lang in ("bash", "python")]


def command_lines(code: str) -> list[list[str]]:
    """The commands of a bash block: continuations joined, comments dropped, `&&` split."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        command: list[str] = []
        for word in [*words, "&&"]:
            if word == "&&":
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(word)
    return commands


def skip_rule(command: list[str]) -> tuple[str, ...] | None:
    """The SKIP entry a command line falls under, if any."""
    return next((p for p in SKIP if tuple(command[: len(p)]) == p), None)


def server_kind(args: list[str]) -> ServerKind | None:
    """The server `python ARGS` starts (`run.py` alone, or a server subcommand), if it is one."""
    return SERVERS.get(tuple(args[:2])) or (SERVERS.get(tuple(args)) if len(args) == 1 else None)


def fresh_checkout(target: Path) -> Path:
    """A copy of the working tree's versioned and new files (what a commit of it would hold)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError) as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"a fresh checkout needs `git ls-files` under CI=true: {error}")
        pytest.skip(f"not a git checkout, so no fresh copy of it can be made: {error}")
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@dataclass
class Server:
    argv: list[str]
    ports: frozenset[str]  # the ports it holds (with the demo exchange it started, if any)
    process: subprocess.Popen
    err: Path


@dataclass
class Session:
    """One README's run: the checkout, its environment, the servers left running."""

    checkout: Path
    env: dict[str, str]
    servers: list[Server] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    started: int = 0
    groups: list[int] = field(default_factory=list)  # process groups to clean up at the end

    def url(self, key: str, path: str) -> str:
        return f"http://127.0.0.1:{self.env[key]}{path}"

    def popen(self, argv: list[str], stdout: int | None = None) -> tuple[subprocess.Popen, Path]:
        """Start `argv` in a process group of its own (so cleanup also reaches its workers);
        stderr (and stdout unless piped) go to files, so no pipe ever fills up or stays open."""
        self.started += 1
        logs = self.checkout.parent / f"process-{self.started}"
        with open(f"{logs}.out", "w") as out, open(f"{logs}.err", "w") as err:
            process = subprocess.Popen(
                argv,
                cwd=self.checkout,
                env=self.env,
                stdout=stdout or out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
        self.groups.append(process.pid)
        return process, Path(f"{logs}.err")

    def run(self, argv: list[str], what: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv,
            cwd=self.checkout,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert result.returncode == 0, (what, result.stdout[-2000:], result.stderr[-3000:])
        assert "Traceback" not in result.stderr, (what, result.stderr[-3000:])
        self.ran.append(what)
        return result

    def python_block(self, code: str) -> None:
        prelude = next((p for marker, p in PRELUDES.items() if marker in code), "")
        self.run([sys.executable, "-c", prelude + code], f"python block: {code.strip()[:60]}")

    def command(self, words: list[str]) -> None:
        what = shlex.join(words)
        if (rule := skip_rule(words)) is not None:
            self.skipped.append((what, SKIP[rule]))
            return
        if words[0] == "curl":
            web = self.ensure_run_py()
            check_curl(shlex.join(words), web)
            self.ran.append(what)
            return
        assert words[0] == "python", f"{what}: no rule to run this line (add one, or to SKIP)"
        args = words[1:]
        if (kind := server_kind(args)) is not None:
            self.start(args, kind)
        elif args[0] == "websocket/test_ws_connection.py" and len(args) < 4:
            self.stream_until_a_kline(args)
        elif args[:2] == ["run.py", "bot"]:
            self.bot_until_running(args)
        else:
            result = self.run([sys.executable, *args], what)
            if args[0] == "websocket/test_ws_connection.py":
                assert KLINE_LINE.search(result.stdout), (what, result.stdout[-2000:])

    def start(self, args: list[str], kind: ServerKind) -> Server:
        for server in [s for s in self.servers if s.ports & kind.ports]:
            self.stop(server)
        demo_taken = any("DEMO_PORT" in s.ports for s in self.servers)
        ports = kind.ports | ({"DEMO_PORT"} if kind.may_start_demo and not demo_taken else set())
        server = Server(args, frozenset(ports), *self.popen([sys.executable, *args]))
        self.servers.append(server)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self._answers(self.url(*kind.probe)):
            if server.process.poll() is not None:
                pytest.fail(f"python {shlex.join(args)} exited: {server.err.read_text()}")
            assert time.monotonic() < deadline, f"python {shlex.join(args)} never answered"
            time.sleep(0.1)
        self.ran.append(f"python {shlex.join(args)} (server)")
        return server

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except OSError:
            return False

    def ensure_run_py(self) -> int:
        if not any(s.argv == ["run.py"] for s in self.servers):
            self.start(["run.py"], SERVERS[("run.py",)])
        return int(self.env["WEB_PORT"])

    def stop(self, server: Server) -> None:
        self.servers.remove(server)
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        err = server.err.read_text()
        what = f"python {shlex.join(server.argv)}"
        assert server.process.returncode == 0, (what, server.process.returncode, err[-3000:])
        assert "Traceback" not in err, (what, err[-3000:])

    def stream_until_a_kline(self, args: list[str]) -> None:
        process, err_file = self.popen([sys.executable, *args], stdout=subprocess.PIPE)
        lines = []
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not any(KLINE_LINE.match(line) for line in lines):
            assert time.monotonic() < deadline, ("no kline line", lines)
            line = process.stdout.readline()
            assert line, ("exited without a kline line", lines, err_file.read_text())
            lines.append(line)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
        err = err_file.read_text()
        assert process.returncode == 0 and "Traceback" not in err, (args, err[-3000:])
        self.ran.append(f"python {shlex.join(args)} (stopped after a kline line)")

    def bot_until_running(self, args: list[str]) -> None:
        """`run.py bot` runs until Ctrl-C: wait until its bot runs, then press Ctrl-C."""
        process, err_file = self.popen([sys.executable, *args], stdout=subprocess.PIPE)
        first = process.stdout.readline()
        assert BOT_LINE.match(first), ("no bot line", first, err_file.read_text()[-3000:])
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "running on" not in err_file.read_text():
            assert process.poll() is None, ("the bot exited", err_file.read_text()[-3000:])
            assert time.monotonic() < deadline, ("the bot never ran", err_file.read_text())
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
        err = err_file.read_text()
        assert process.returncode == 0 and "Traceback" not in err, (args, err[-3000:])
        assert "stopped" in out, out
        self.ran.append(f"python {shlex.join(args)} (stopped with Ctrl-C once running)")

    def close(self) -> None:
        for server in reversed(list(self.servers)):
            self.stop(server)


@pytest.fixture
def session(tmp_path) -> Iterator[Session]:
    checkout = fresh_checkout(tmp_path / "checkout")
    assert not (checkout / "config" / ".env").exists()
    assert not list(checkout.rglob("*.db"))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        **{key: str(free_port()) for key in PORT_KEYS},
    }
    session = Session(checkout, env)
    try:
        yield session
    finally:  # whatever a failed step left behind, workers of a killed server included
        for group in session.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        for server in session.servers:
            server.process.wait()


def run_readme(session: Session, text: str) -> None:
    for lang, code in code_blocks(text):
        if lang == "python":
            session.python_block(code)
        else:
            for words in command_lines(code):
                session.command(words)
    session.close()


def user_readme() -> str:
    if not USER_README.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{USER_README} is missing under CI=true: the user's README must be there")
        pytest.skip(f"the user's README is not at {USER_README}")
    return USER_README.read_text()


@pytest.mark.timeout(180)
def test_the_users_readme_runs_as_written(session):
    started = time.monotonic()
    run_readme(session, user_readme())
    checkout = session.checkout
    # One default database: the download named "datos_historicos.db", the export named none,
    # `python run.py` and its pages use DATABASE_URL; all are data/datos_historicos.db.
    assert [p.relative_to(checkout) for p in checkout.rglob("*.db")] == [
        Path("data/datos_historicos.db")
    ]
    assert (checkout / "export_btc.csv").read_text().count("\n") > 40_000  # 30 days of 1m
    assert (checkout / "config" / ".env").is_file()  # python setup_env.py
    assert {what for what, _ in session.skipped} >= {"pip install -r requirements.txt"}
    print(f"user's README: {len(session.ran)} steps in {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(180)
def test_the_readme_runs_as_written(session):
    started = time.monotonic()
    run_readme(session, (ROOT / "README.md").read_text())
    ran = "\n".join(session.ran)
    for server in ("run.py", "run.py web", "run.py bridge", "-m wsbridge", "run.py demo-exchange"):
        assert f"python {server} (server)" in ran, server
    assert "curl -s http://localhost:5000/openapi.json" in ran
    assert "python websocket/test_ws_connection.py BTCUSDT 1m 5" in ran
    assert "(stopped with Ctrl-C once running)" in ran  # python run.py bot …
    assert [p.relative_to(session.checkout) for p in session.checkout.rglob("*.db")] == [
        Path("data/datos_historicos.db")
    ]
    print(f"README.md: {len(session.ran)} steps in {time.monotonic() - started:.1f} s")


def test_every_skip_rule_is_needed_and_every_other_line_has_a_rule():
    texts = [(ROOT / "README.md").read_text(), user_readme()]
    commands = [words for text in texts for lang, code in code_blocks(text) if lang == "bash"
                for words in command_lines(code)]  # fmt: skip
    assert {skip_rule(words) for words in commands} - {None} == set(SKIP)
    for words in commands:
        assert skip_rule(words) or words[0] in ("python", "curl"), words
