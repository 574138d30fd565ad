"""
The installable command: the wheel `pip wheel .` builds, installed into a fresh venv, gives a `token-replay`
command that prints and writes exactly what `python -m enrichment triage`, `python -m playbooks run` and
`python -m sample_tenant` do.

Offline on purpose: the wheel is built without build isolation (setuptools is pinned in requirements-dev.txt)
and installed with `--no-index` into a venv that sees this test run's own site-packages through a `.pth`
file, so pip installs only the wheel and still checks that every declared dependency is satisfied.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "enrichment", "playbooks", "sample_tenant")
SAMPLE = ("--users", "20", "--days", "3", "--variants", "1", "--seed", "11")
# A dry run names its approval request after the wall clock (the Function App after the incident's arrival),
# and its deadline (in result.json and in the card's text) follows from it: times near now are masked.
REQUEST = re.compile(r"(approval:\d+:)\d{8}T\d{6}")
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z|\d{4}-\d\d-\d\d \d\d:\d\d UTC")


def _without_clock(text: str) -> str:
    """The text with the request's clock and every time within a day of now replaced by a placeholder."""
    now = datetime.now(UTC)

    def mask(match: re.Match[str]) -> str:
        # ISO instants, and the card's "decide by" time to the minute (two runs can straddle a minute).
        moment = datetime.fromisoformat(match.group(0).replace("Z", "+00:00").replace(" UTC", "+00:00"))
        return "<now>" if abs(moment - now) < timedelta(days=1) else match.group(0)

    return MOMENT.sub(mask, REQUEST.sub(r"\1<now>", text))


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    command: Path
    tenant: Path


def _run(args: list[str | Path], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel built from a copy of the sources, installed into a fresh venv, and a sample tenant it generated."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = _run([*pip, "wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", tmp / "dist", source], cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp / "dist").glob("*.whl")

    env = tmp / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = _run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp).stdout.strip()
    ours = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    (Path(site) / "_dependencies.pth").write_text("".join(f"{path}\n" for path in ours), encoding="utf-8")
    done = _run([*pip, "--python", python, "install", "--no-index", wheel], cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr

    command = env / "bin" / "token-replay"
    made = _run([command, "sample", "--out", tmp / "tenant", *SAMPLE], cwd=tmp)
    assert made.returncode == 0, made.stderr
    return Installed(wheel, env, command, tmp / "tenant")


def _scenario(tenant: Path, family: str) -> dict[str, str]:
    scenarios: list[dict[str, str]] = json.loads((tenant / "scenarios.json").read_text(encoding="utf-8"))
    return next(s for s in scenarios if s["family"] == family)


def test_the_wheel_holds_the_four_packages_and_the_column_schemas(installed: Installed) -> None:
    """Only common, enrichment, playbooks and sample_tenant (no tests, no function_app.py), with the schemas and AS names."""
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.startswith("token_replay_playbook-")} == set(PACKAGES)
    shipped = {f"enrichment/schemas/{path.name}" for path in (ROOT / "enrichment" / "schemas").glob("*.json")}
    assert {"SigninLogs", "AADNonInteractiveUserSignInLogs", "AuditLogs", "OfficeActivity"} <= {
        name.removeprefix("enrichment/schemas/").removesuffix(".json") for name in shipped
    }
    assert {n for n in names if n.startswith("enrichment/schemas/")} == shipped
    assert "enrichment/render/asn-names.tsv.gz" in names
    assert "enrichment/egress_lists/icloud-private-relay.txt.gz" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "token-replay = playbooks.cli.token_replay:main" in zipfile.ZipFile(installed.wheel).read(entry_points).decode()


def test_the_command_runs_the_installed_code_without_the_graph_sdk(installed: Installed, tmp_path: Path) -> None:
    """Outside the checkout, triage imports our packages from the venv and never msgraph or the Functions libraries."""
    scenario = _scenario(installed.tenant, "aitm_cookie_replay")
    probe = (
        "import json, sys\n"
        "from playbooks.cli.token_replay import main\n"
        "code = main(sys.argv[1:])\n"
        "import enrichment\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'msgraph' or m.startswith(('azure.functions', 'azure.durable')))\n"
        "print(json.dumps({'code': code, 'from': enrichment.__file__, 'heavy': heavy}), file=sys.stderr)\n"
    )
    args = ["triage", "--data", installed.tenant, "--user", scenario["user"], "--at", scenario["at"], "--cache", tmp_path / "c"]
    done = _run([installed.venv / "bin" / "python", "-c", probe, *args], cwd=tmp_path)
    report = json.loads(done.stderr.splitlines()[-1])
    assert report["code"] == 0, done.stderr
    assert Path(report["from"]).is_relative_to(installed.venv)
    assert report["heavy"] == []


@pytest.mark.parametrize(("family", "output"), [("aitm_cookie_replay", "json"), ("vpn_split_tunnel", "text")])
def test_token_replay_triage_is_python_m_enrichment_triage(
    installed: Installed, tmp_path: Path, family: str, output: str
) -> None:
    """Same document on stdout, same load line on stderr (times aside) and same exit status, for an attack and a look-alike."""
    scenario = _scenario(installed.tenant, family)
    common = ["--data", installed.tenant, "--user", scenario["user"], "--at", scenario["at"], "--format", output]
    common += ["--settings", installed.tenant / "settings.json"]
    mine = _run([installed.command, "triage", *common, "--cache", tmp_path / "a.duckdb"], cwd=tmp_path)
    theirs = _run([sys.executable, "-m", "enrichment", "triage", *common, "--cache", tmp_path / "b.duckdb"], cwd=ROOT)

    assert (mine.returncode, mine.stdout) == (theirs.returncode, theirs.stdout) == (0, mine.stdout)
    assert scenario["user"] in mine.stdout
    seconds = re.compile(r"\d+\.\d+ s")
    assert seconds.sub("_", mine.stderr) == seconds.sub("_", theirs.stderr) != ""


def test_token_replay_triage_refuses_bad_input_like_python_m_enrichment(installed: Installed, tmp_path: Path) -> None:
    """A bad time is exit 2 with the same one line on stderr."""
    args = ["triage", "--data", installed.tenant, "--user", "a@b.example", "--at", "yesterday"]
    mine = _run([installed.command, *args], cwd=tmp_path)
    theirs = _run([sys.executable, "-m", "enrichment", *args], cwd=ROOT)
    assert (mine.returncode, mine.stdout, mine.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert mine.returncode == 2
    assert mine.stderr.count("\n") == 1


def test_token_replay_run_is_python_m_playbooks_run(installed: Installed, tmp_path: Path) -> None:
    """The dry run writes the same comment, result document and card, the approval request's clock aside."""
    incident = installed.tenant / _scenario(installed.tenant, "aitm_cookie_replay")["incident"]
    common = ["--incident", incident, "--data", installed.tenant, "--settings", installed.tenant / "settings.json", "--dry-run"]
    mine = _run([installed.command, "run", *common, "--out", tmp_path / "mine"], cwd=tmp_path)
    theirs = _run([sys.executable, "-m", "playbooks", "run", *common, "--out", tmp_path / "theirs"], cwd=ROOT)

    assert (mine.returncode, mine.stderr) == (theirs.returncode, theirs.stderr) == (0, "")
    assert mine.stdout.replace("/mine/", "/theirs/") == theirs.stdout
    written = sorted(p.name for p in (tmp_path / "mine").iterdir())
    assert written == sorted(p.name for p in (tmp_path / "theirs").iterdir())
    assert {"comment.html", "result.json", "card.json"} <= set(written)
    for name in written:
        texts = [_without_clock((tmp_path / side / name).read_text(encoding="utf-8")) for side in ("mine", "theirs")]
        assert texts[0] == texts[1], name


def test_token_replay_sample_is_python_m_sample_tenant(installed: Installed, tmp_path: Path) -> None:
    """The same arguments write byte-identical files whichever command wrote them."""
    theirs = _run([sys.executable, "-m", "sample_tenant", "--out", tmp_path / "tenant", *SAMPLE], cwd=ROOT)
    assert theirs.returncode == 0, theirs.stderr
    for path in sorted((tmp_path / "tenant").rglob("*")):
        if path.is_file():
            assert path.read_bytes() == (installed.tenant / path.relative_to(tmp_path / "tenant")).read_bytes(), path.name
