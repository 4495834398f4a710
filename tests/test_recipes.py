"""The recipes in deploy/ for real hosts, each checked here without a network: the systemd units (and
`systemd-analyze` where it is installed), the Dockerfile (and a wheel built offline from exactly what it copies),
the GitHub Actions workflow (and its state steps run with a stand-in `aws`), and the CloudFormation template (and
`cfn-lint`: required in CI, where the test dependencies install it)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from tools import require, require_command, require_module

DEPLOY = REPO / "deploy"
SYSTEMD = DEPLOY / "systemd"
NEWSLETTER = "/srv/newsletter"


# ---------------------------------------------------------------- systemd


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values]}} (a key may repeat), with comments and continuations handled."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if not line or line.startswith(("#", ";")):
            continue
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} is outside a section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is missing"
    return values[-1]  # the last assignment wins in systemd


def seconds(timespan: str) -> float:
    """A systemd time span ("5min", "1h 30s", "90") in seconds; infinity for "infinity"."""
    if timespan == "infinity":
        return float("inf")
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}
    parts = re.findall(r"(\d+)\s*([a-z]*)", timespan)
    assert parts and "".join(f"{n}{u}" for n, u in parts) == timespan.replace(" ", ""), timespan
    return sum(int(n) * units[u] for n, u in parts)


HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
             "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
             "ProtectControlGroups": "yes", "RestrictSUIDSGID": "yes", "LockPersonality": "yes",
             "CapabilityBoundingSet": ""}


def check_service(name: str, command: list[str]) -> dict[str, dict[str, list[str]]]:
    unit = parse_unit(SYSTEMD / name)
    argv = shlex.split(one(unit, "Service", "ExecStart"))
    assert argv[0].startswith("/") and argv[0].endswith("/publisher"), argv
    assert argv[1:] == ["-C", NEWSLETTER, *command], argv
    user = one(unit, "Service", "User")
    assert user and user not in ("root", "0"), "a dedicated user, never root"
    assert one(unit, "Service", "WorkingDirectory") == NEWSLETTER
    assert one(unit, "Service", "EnvironmentFile").lstrip("-") == "/etc/publisher/env"
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, f"{name}: {key}={value}"
    writable = " ".join(unit["Service"].get("ReadWritePaths", [])).split()
    assert [p.lstrip("-") for p in writable] == [NEWSLETTER], "the newsletter folder is the only writable place"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert "network-online.target" in one(unit, "Unit", "After")
    return unit


def test_timer_runs_publish_due_every_five_minutes_and_catches_up():
    unit = check_service("publisher-publish.service", ["publish", "--due"])
    assert one(unit, "Service", "Type") == "oneshot"
    assert "Install" not in unit, "the timer starts the service; the service itself is not enabled"
    timer = parse_unit(SYSTEMD / "publisher-publish.timer")
    assert one(timer, "Timer", "OnCalendar") == "*:0/5"
    assert one(timer, "Timer", "Persistent") == "true", "a run missed while the machine was off happens at boot"
    assert one(timer, "Timer", "Unit") == "publisher-publish.service"
    assert (SYSTEMD / one(timer, "Timer", "Unit")).is_file()
    assert one(timer, "Install", "WantedBy") == "timers.target"


def test_run_service_is_the_long_running_alternative():
    unit = check_service("publisher-run.service", ["run"])
    assert one(unit, "Service", "Type") in ("simple", "exec")
    assert one(unit, "Service", "Restart") == "on-failure"
    assert seconds(one(unit, "Service", "TimeoutStopSec")) >= 60, "time for a send to stop between messages"
    assert one(unit, "Service", "KillMode") == "mixed", "SIGTERM to publisher, not to its build workers"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert {"publisher-publish.timer", "publisher-publish.service"} <= set(one(unit, "Unit", "Conflicts").split())


@pytest.fixture
def units_with_stub(tmp_path):
    """The units in tmp_path with ExecStart pointing at a stub `publisher` (verify checks the binary exists)."""
    stub = tmp_path / "publisher"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copies = []
    for path in sorted(SYSTEMD.iterdir()):
        text = re.sub(r"^(ExecStart=)\S+", rf"\g<1>{stub}", path.read_text(encoding="utf-8"), flags=re.M)
        (tmp_path / path.name).write_text(text, encoding="utf-8")
        copies.append(tmp_path / path.name)
    return copies


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "TZ": "UTC", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"})


def about(result: subprocess.CompletedProcess[str], files: list[Path]) -> list[str]:
    """The lines of systemd-analyze's output about our files (it may also talk about the host's own units)."""
    names = [f.name for f in files] + [str(files[0].parent)]
    return [line for line in (result.stdout + result.stderr).splitlines() if any(n in line for n in names)]


def test_systemd_analyze_verifies_the_units(units_with_stub, tmp_path):
    require_command("systemd-analyze", "apt-get install systemd")
    result = analyze("verify", "--man=no", *(f"./{f.name}" for f in units_with_stub), cwd=tmp_path)
    assert result.returncode == 0 and not about(result, units_with_stub), result.stdout + result.stderr

    # The check can fail: a misspelt key and a missing binary are reported.
    broken = tmp_path / "broken" / "publisher-publish.service"
    broken.parent.mkdir()
    broken.write_text(units_with_stub[0].read_text().replace("Type=oneshot", "Typ=oneshot")
                      .replace(str(tmp_path / "publisher"), str(tmp_path / "missing")))
    result = analyze("verify", "--man=no", f"./{broken.name}", cwd=broken.parent)
    assert "Unknown key" in result.stdout + result.stderr and result.returncode != 0

    # "*:0/5" is every five minutes by systemd's own reading of it.
    result = analyze("calendar", "--iterations=4", "*:0/5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    times = [datetime.strptime(m, "%Y-%m-%d %H:%M:%S") for m in
             re.findall(r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", result.stdout)]
    assert len(times) == 4 and {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)} == {300}

    # The hardening adds up: systemd's exposure score is "OK" (below 2.5 of 10) for both services.
    require("--offline" in analyze("security", "--help", cwd=tmp_path).stdout,
            "systemd-analyze security --offline (systemd 250 or newer)", "Debian 12's systemd has it")
    for unit in units_with_stub:
        if unit.suffix == ".service":
            result = analyze("security", "--offline=true", "--threshold=25", "--no-pager", f"./{unit.name}",
                             cwd=tmp_path)
            score = re.search(r"Overall exposure level for \S+: ([\d.]+)", result.stdout)
            assert result.returncode == 0 and score, result.stdout[-2000:] + result.stderr
            print(f"{unit.name}: exposure {score.group(1)}")


# ---------------------------------------------------------------- Dockerfile


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """[(INSTRUCTION, arguments)], continuation lines joined, comments (and parser directives) left out."""
    instructions: list[tuple[str, str]] = []
    pending: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        text = " ".join(p for p in pending if p)
        pending = []
        word, _, rest = text.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"{args} is not the exec (JSON) form"
    return value


def copy_sources(args: str) -> tuple[list[str], str, list[str]]:
    """COPY's (sources, destination, flags), in the shell or the JSON form."""
    words = shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    words = [w for w in words if not w.startswith("--")]
    if args.lstrip().startswith("["):
        words = json.loads(args[args.index("["):])
    return words[:-1], words[-1], flags


@pytest.fixture(scope="module")
def dockerfile():
    instructions = parse_dockerfile(DEPLOY / "Dockerfile")
    froms = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    assert froms, "no FROM"
    return instructions, instructions[froms[-1]:]  # all of it, and the final stage (the image that runs)


def test_dockerfile_makes_a_small_unprivileged_publisher_image(dockerfile):
    everything, final = dockerfile
    words = [word for word, _ in final]
    image = final[0][1].split()[0]
    match = re.fullmatch(r"(?:docker\.io/(?:library/)?)?python:3\.(\d+)-slim(?:-\w+)?(?:@sha256:[0-9a-f]{64})?", image)
    assert match and int(match.group(1)) >= 11, f"base {image}: a slim Python 3.11 or newer"

    assert words.count("ENTRYPOINT") == 1 and words.count("CMD") == 1
    entrypoint = words.index("ENTRYPOINT")
    assert exec_form(final[entrypoint][1]) == ["publisher"], "`docker run IMAGE publish --due` must work"
    assert exec_form(final[words.index("CMD")][1]) == ["run"], "`docker run IMAGE` runs the loop"
    users = [args for word, args in final[:entrypoint] if word == "USER"]
    assert users, "no USER before ENTRYPOINT: the container would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), f"USER {users[-1]} is root"
    assert [args for word, args in final if word == "STOPSIGNAL"] == ["SIGTERM"]
    assert [args for word, args in final if word == "WORKDIR"][-1] == "/newsletter"
    volumes = " ".join(args for word, args in final if word == "VOLUME")
    assert "/newsletter" in volumes

    runs = " && ".join(args for word, args in final if word == "RUN")
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", runs), "installs the package from the copied repo"

    for word, args in everything:
        if word in ("COPY", "ADD"):
            sources, _, flags = copy_sources(args)
            if any(f.startswith("--from") for f in flags):
                continue
            for source in sources:
                assert (REPO / source).exists(), f"{word} {source}: not in the build context (the repo root)"
                assert not re.match(r"(\.venv|dist|public|outbox|subscribers\.db|\.git)\b", source), source


def test_what_the_dockerfile_copies_builds_the_package(dockerfile, tmp_path):
    """Replays the final stage's WORKDIR and COPY lines into a folder, then builds a wheel there offline, as the
    image's `pip install .` does: a file the build needs but the Dockerfile does not copy fails here."""
    _, final = dockerfile
    root = tmp_path / "image"
    workdir = Path("/")
    build_dir = None
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for word, args in final:
        if word == "WORKDIR":
            workdir = workdir / args
        elif word == "COPY":
            sources, dest, _ = copy_sources(args)
            target = root / (workdir / dest).relative_to("/")
            for source in sources:
                path = REPO / source
                if path.is_dir():
                    shutil.copytree(path, target, ignore=ignore, dirs_exist_ok=True)
                else:
                    into_folder = dest.endswith("/") or len(sources) > 1
                    (target if into_folder else target.parent).mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target / path.name if into_folder else target)
        elif word == "RUN" and "pip install" in args:
            build_dir = root / workdir.relative_to("/")
            break
    assert build_dir is not None and (build_dir / "pyproject.toml").is_file()
    out = tmp_path / "wheel"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(build_dir), "--no-deps", "--no-build-isolation",
                             "--no-index", "-q", "-w", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("publisher-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    assert "publisher/cli.py" in names and "publisher/themes/default/web/base.html" in names
    assert "publisher = publisher.cli:main" in entry_points


# ---------------------------------------------------------------- GitHub Actions


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "github-actions" / "publish.yml").read_text(encoding="utf-8"))


def steps_of(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def find_step(steps: list[dict[str, Any]], pattern: str) -> int:
    found = [i for i, s in enumerate(steps) if re.search(pattern, s.get("run", "") + " " + s.get("uses", ""), re.M)]
    assert len(found) == 1, f"{len(found)} steps match {pattern!r}"
    return found[0]


STATE = "s3://$STATE_BUCKET/state/subscribers.db"


def state_steps(steps: list[dict[str, Any]]) -> tuple[int, int]:
    """The indexes of the step that downloads subscribers.db from the state bucket and of the one that uploads it."""
    copies = [(i, m.groups()) for i, s in enumerate(steps)
              for m in re.finditer(r'aws s3 cp (?:--[\w-]+ )*"([^"]+)" "([^"]+)"', s.get("run", ""))]
    downloads = [i for i, (source, _) in copies if source == STATE]
    uploads = [i for i, (_, dest) in copies if dest == STATE]
    assert len(downloads) == 1 and len(uploads) == 1, copies
    return downloads[0], uploads[0]


def test_workflow_publishes_on_a_schedule_one_run_at_a_time_with_oidc(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert [c["cron"] for c in triggers["schedule"]] == ["*/15 * * * *"]
    assert "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"id-token": "write", "contents": "read"}
    assert workflow["concurrency"] == {"group": "publish", "cancel-in-progress": False}

    steps = steps_of(workflow)
    aws = steps[find_step(steps, r"^ aws-actions/configure-aws-credentials@v4$")]["with"]
    assert aws["role-to-assume"] == "${{ vars.AWS_ROLE_ARN }}"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(aws), "OIDC, no stored keys"
    (job,) = workflow["jobs"].values()
    assert job["timeout-minutes"] * 60 <= aws["role-duration-seconds"], "the credentials outlive the job"

    install = find_step(steps, r"pip install")
    restore, save = state_steps(steps)
    publish = find_step(steps, r"^publisher\b.* publish --due\b")
    assert install < find_step(steps, r"configure-aws-credentials") < restore < publish < save
    assert steps[publish]["env"]["PUBLISHER_SECRET"] == "${{ secrets.PUBLISHER_SECRET }}"
    assert "always()" in steps[save]["if"], "the ledger is saved even when publish failed"
    assert "steps.restore.outcome == 'success'" in steps[save]["if"], "never overwrite the state after a bad restore"
    assert steps[restore]["id"] == "restore"


def test_workflow_with_a_dynamodb_table_copies_no_state_file(workflow):
    """With vars.DYNAMODB_TABLE, subscribers, ledger and publish state live in the table: no subscribers.db goes to
    or from S3 (two overlapping runs could lose a write there), and publish still runs."""
    assert workflow["env"]["PUBLISHER_SUBSCRIBERS_DYNAMODB_TABLE"] == "${{ vars.DYNAMODB_TABLE }}"
    assert workflow["env"]["PUBLISHER_EMAIL_QUEUE_URL"] == "${{ vars.SEND_QUEUE_URL }}"
    assert workflow["env"]["PUBLISHER_EMAIL_FANOUT"] == "${{ vars.SEND_QUEUE_URL && 'sqs' || 'local' }}"
    steps = steps_of(workflow)
    restore, save = state_steps(steps)
    publish = find_step(steps, r"^publisher\b.* publish --due\b")
    assert steps[restore]["if"] == "vars.DYNAMODB_TABLE == ''"
    assert "steps.restore.outcome == 'success'" in steps[save]["if"]  # a skipped restore: nothing to save
    assert "steps.restore.outcome == 'skipped'" in steps[publish]["if"]


def test_workflow_hard_codes_no_secret(workflow):
    text = (DEPLOY / "github-actions" / "publish.yml").read_text(encoding="utf-8")
    assert not re.search(r"AKIA[0-9A-Z]{16}|aws_secret_access_key|-----BEGIN", text)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if re.search(r"secret|passw|token|(access|private|api)[-_]?key", str(key), re.I) and key != "id-token":
                    assert isinstance(value, str) and re.fullmatch(r"\$\{\{ (secrets|vars)\.\w+ \}\}", value), (
                        f"{path}.{key} must come from ${{{{ secrets.* }}}} or ${{{{ vars.* }}}}, not {value!r}")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
        elif isinstance(node, str) and "secrets." in node:
            # A secret reaches a step only through env: never expanded into a script (logs, injection).
            assert re.fullmatch(r"\$\{\{ secrets\.\w+ \}\}", node), f"{path}: {node!r}"

    walk(workflow, "workflow")


@pytest.fixture
def fake_aws(tmp_path):
    """An `aws` on PATH that answers `aws s3 cp` from a folder standing in for the bucket, and records calls."""
    bucket = tmp_path / "bucket"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "aws"
    script.write_text(f"""#!{sys.executable}
import shutil, sys
from pathlib import Path
bucket = Path({str(bucket)!r})
args = [a for a in sys.argv[1:] if not a.startswith("--")]
with open(bucket.parent / "aws-calls.txt", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if (bucket / "FAIL").exists():
    sys.exit("An error occurred (403) when calling the HeadObject operation: Forbidden")
assert args[:2] == ["s3", "cp"], args
source, dest = args[2:4]
if source.startswith("s3://"):
    path = bucket / source[5:]
    if not path.exists():
        sys.exit(f"fatal error: An error occurred (404) when calling the HeadObject operation: Key does not exist")
    shutil.copy(path, dest)
else:
    path = bucket / dest[5:]
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, path)
""")
    script.chmod(0o755)
    (bin_dir / "python").symlink_to(sys.executable)
    return bucket, bin_dir


def run_step(step: dict[str, Any], tmp_path: Path, bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """A step's `run` script as GitHub runs it on Linux (bash -e -o pipefail), with the workflow's env."""
    script = tmp_path / "step.sh"
    script.write_text(step["run"])
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "STATE_BUCKET": "state-bucket", "NEWSLETTER_DIR": str(tmp_path / "nl")}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], env=env,
                          capture_output=True, text=True, timeout=30)


def test_workflow_state_steps_restore_and_save_subscribers_db(workflow, fake_aws, tmp_path):
    bucket, bin_dir = fake_aws
    steps = steps_of(workflow)
    restore, save = (steps[i] for i in state_steps(steps))
    for step in steps:
        if "run" in step:
            check = subprocess.run(["bash", "-n"], input=step["run"], capture_output=True, text=True, timeout=10)
            assert check.returncode == 0, f"{step.get('name')}: {check.stderr}"
    newsletter = tmp_path / "nl"
    newsletter.mkdir()
    saved = bucket / "state-bucket" / "state" / "subscribers.db"

    # The first run: nothing saved yet is not an error, and there is nothing to save either.
    result = run_step(restore, tmp_path, bin_dir)
    assert result.returncode == 0, result.stderr
    assert not (newsletter / "subscribers.db").exists()
    assert run_step(save, tmp_path, bin_dir).returncode == 0 and not saved.exists()

    # A run leaves a database in WAL mode with the last commits still in the log (as after a crash):
    # the save folds them into the one file it uploads.
    db = sqlite3.connect(newsletter / "subscribers.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE ledger (email TEXT)")
    db.execute("INSERT INTO ledger VALUES ('a@example.com')")
    db.commit()
    assert (newsletter / "subscribers.db-wal").stat().st_size > 0
    result = run_step(save, tmp_path, bin_dir)
    db.close()
    assert result.returncode == 0, result.stderr
    copy = tmp_path / "copy.db"
    shutil.copy(saved, copy)  # the uploaded file alone, without its -wal
    assert sqlite3.connect(copy).execute("SELECT email FROM ledger").fetchall() == [("a@example.com",)]

    # The next run gets it back.
    for name in ("subscribers.db", "subscribers.db-wal", "subscribers.db-shm"):
        (newsletter / name).unlink(missing_ok=True)
    assert run_step(restore, tmp_path, bin_dir).returncode == 0
    assert sqlite3.connect(newsletter / "subscribers.db").execute("SELECT count(*) FROM ledger").fetchone() == (1,)

    # Any other error (denied, throttled) stops the job rather than starting again from an empty ledger.
    (bucket / "FAIL").touch()
    result = run_step(restore, tmp_path, bin_dir)
    assert result.returncode != 0 and "403" in result.stderr


# ---------------------------------------------------------------- CloudFormation

INTRINSICS = {"Ref", "GetAtt", "Sub", "If", "Equals", "Not", "Join", "Select", "Split", "FindInMap", "Condition",
              "GetAZs", "ImportValue", "Base64", "And", "Or", "Cidr", "Transform", "Length", "ToJsonString"}


class CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short forms (!Ref X -> {"Ref": "X"}, !Sub s -> {"Fn::Sub": s})."""


def _intrinsic(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if suffix not in INTRINSICS:
        raise yaml.constructor.ConstructorError(None, None, f"unknown tag !{suffix}", node.start_mark)
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _intrinsic)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load((DEPLOY / "cloudformation.yaml").read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def the(template: dict[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    found = of_type(template, kind)
    assert len(found) == 1, f"{len(found)} resources of type {kind}"
    name, resource = next(iter(found.items()))
    return name, resource.get("Properties", {})


def refers_to(value: Any, name: str) -> bool:
    """Whether a property value names a resource: Ref, GetAtt or ${name} inside Sub, at any depth."""
    if isinstance(value, dict):
        if value.get("Ref") == name or (value.get("Fn::GetAtt") or [None])[0] == name:
            return True
        sub = value.get("Fn::Sub")
        if isinstance(sub, str) and re.search(rf"\$\{{{name}[}}.]", sub):
            return True
        if isinstance(sub, list) and re.search(rf"\$\{{{name}[}}.]", sub[0]):
            return True
        return any(refers_to(v, name) for v in value.values())
    if isinstance(value, list):
        return any(refers_to(v, name) for v in value)
    return False


def test_template_parameters_and_resources(template):
    parameters = template["Parameters"]
    assert "BucketName" in parameters
    for optional in ("DomainName", "NotificationEmail", "GitHubRepository"):
        assert parameters[optional].get("Default") == "", f"{optional} is optional"
    expected = {"AWS::S3::Bucket", "AWS::CloudFront::Distribution", "AWS::CloudFront::OriginAccessControl",
                "AWS::SES::ConfigurationSet", "AWS::SES::ConfigurationSetEventDestination", "AWS::SNS::Topic",
                "AWS::SQS::Queue", "AWS::SNS::Subscription", "AWS::IAM::ManagedPolicy"}
    types = {r["Type"] for r in template["Resources"].values()}
    assert expected <= types, expected - types
    assert "AWS::CloudFront::CloudFrontOriginAccessIdentity" not in types, "Origin Access Control, not the legacy OAI"
    for name, resource in template["Resources"].items():
        for key in ("Condition",):
            if key in resource:
                assert resource[key] in template["Conditions"], f"{name}: unknown condition {resource[key]}"


def test_template_site_bucket_is_private_and_read_only_by_the_distribution(template):
    buckets = of_type(template, "AWS::S3::Bucket")
    site_name, site = next((n, r["Properties"]) for n, r in buckets.items() if "BucketName" in r["Properties"])
    assert site["BucketName"] == {"Ref": "BucketName"}
    for bucket in buckets.values():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True}
        assert bucket.get("DeletionPolicy") == "Retain", "deleting the stack never deletes the site or the state"

    oac_name, oac = the(template, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["OriginAccessControlOriginType"] == "s3"
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    distribution_name, distribution = the(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    (origin,) = config["Origins"]
    assert refers_to(origin["DomainName"], site_name) and refers_to(origin["OriginAccessControlId"], oac_name)
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    behaviour = config["DefaultCacheBehavior"]
    assert behaviour["ViewerProtocolPolicy"] in ("redirect-to-https", "https-only")
    function_name, _ = the(template, "AWS::CloudFront::Function")
    (association,) = behaviour["FunctionAssociations"]
    assert association["EventType"] == "viewer-request" and refers_to(association["FunctionARN"], function_name)

    policies = [r["Properties"] for r in of_type(template, "AWS::S3::BucketPolicy").values()
                if refers_to(r["Properties"]["Bucket"], site_name)]
    (policy,) = policies
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1, "the distribution is the only reader"
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert refers_to(allow["Condition"]["StringEquals"]["AWS:SourceArn"], distribution_name)


def test_cloudfront_function_serves_folder_index_documents(template):
    require_command("node", "apt-get install nodejs")
    _, function = the(template, "AWS::CloudFront::Function")
    assert function["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    cases = {"/": "/index.html", "/issues/x/": "/issues/x/index.html", "/rss.xml": "/rss.xml",
             "/static/style.css": "/static/style.css", "/issues/x": "301 /issues/x/"}
    harness = function["FunctionCode"] + "\nconst cases = " + json.dumps(list(cases)) + ";\n" + """
const out = {};
for (const uri of cases) {
  const r = handler({request: {uri: uri, querystring: {}, headers: {}}});
  out[uri] = r.statusCode ? r.statusCode + ' ' + r.headers.location.value : r.uri;
}
console.log(JSON.stringify(out));
"""
    result = subprocess.run(["node", "-e", harness], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == cases


def test_template_routes_bounces_and_complaints_to_the_queue(template):
    set_name, _ = the(template, "AWS::SES::ConfigurationSet")
    _, destination = the(template, "AWS::SES::ConfigurationSetEventDestination")
    assert refers_to(destination["ConfigurationSetName"], set_name)
    event = destination["EventDestination"]
    assert event["Enabled"] is True
    types = json.dumps(event["MatchingEventTypes"])
    assert '"bounce"' in types and '"complaint"' in types
    topics = of_type(template, "AWS::SNS::Topic")
    topic = next(n for n in topics if refers_to(event["SnsDestination"]["TopicARN"], n))

    subscriptions = [r["Properties"] for r in of_type(template, "AWS::SNS::Subscription").values()
                     if refers_to(r["Properties"]["TopicArn"], topic)]
    (subscription,) = subscriptions
    assert subscription["Protocol"] == "sqs" and subscription["RawMessageDelivery"] is False
    queues = of_type(template, "AWS::SQS::Queue")
    queue = next(n for n in queues if refers_to(subscription["Endpoint"], n))
    redrive = queues[queue]["Properties"]["RedrivePolicy"]
    assert any(refers_to(redrive["deadLetterTargetArn"], n) for n in queues if n != queue), "a dead-letter queue"

    (queue_policy,) = [r["Properties"] for r in of_type(template, "AWS::SQS::QueuePolicy").values()
                       if refers_to(r["Properties"]["Queues"], queue)]
    (statement,) = queue_policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert refers_to(statement["Condition"]["ArnEquals"]["aws:SourceArn"], topic)

    outputs = template["Outputs"]
    assert outputs["QueueUrl"]["Value"] == {"Ref": queue}
    for name in ("BucketName", "DistributionId", "DistributionDomainName"):
        assert name in outputs


def actions(statement: dict[str, Any]) -> set[str]:
    value = statement["Action"]
    return {value} if isinstance(value, str) else set(value)


def test_template_publisher_policy_is_the_deploy_policy_plus_sending(template):
    # The publish function's and the table's policies are checked in test_cloudformation_aws.py.
    policy = of_type(template, "AWS::IAM::ManagedPolicy")["PublisherPolicy"]["Properties"]
    statements = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert all(s["Effect"] == "Allow" for s in statements.values())
    deploy_policy = json.loads((DEPLOY / "iam-deploy-policy.json").read_text())["Statement"]
    for statement in deploy_policy:
        assert statement["Sid"] in statements, f"{statement['Sid']} of iam-deploy-policy.json is missing"
        assert actions(statements[statement["Sid"]]) == actions(statement), statement["Sid"]
    s3 = {a for s in statements.values() for a in actions(s) if a.startswith("s3:")}
    assert s3 == {a for s in deploy_policy for a in actions(s) if a.startswith("s3:")}, "S3: the deploy policy only"
    listing = next(s for s in statements.values() if "s3:ListBucket" in actions(s))
    assert "s3:prefix" in json.dumps(listing["Condition"]), "ListBucket only under the site's prefix"
    distribution_name, _ = the(template, "AWS::CloudFront::Distribution")
    assert refers_to(statements["InvalidateTheCdnCache"]["Resource"], distribution_name)

    granted = {a for s in statements.values() for a in actions(s)}
    assert {"ses:SendEmail", "ses:SendRawEmail", "ses:GetSendQuota", "sqs:ReceiveMessage", "sqs:DeleteMessage",
            "sqs:GetQueueAttributes", "ses:ListContacts", "ses:GetContact", "ses:CreateContact", "ses:UpdateContact",
            "ses:DeleteContact", "ses:CreateContactList", "ses:GetContactList"} <= granted
    assert not any("*" in a for a in granted), "no wildcard actions"
    for sid, statement in statements.items():
        if statement["Resource"] == "*":
            assert actions(statement) == {"ses:GetSendQuota"}, f"{sid}: only GetSendQuota has no resource to name"

    (role,) = [r for r in of_type(template, "AWS::IAM::Role").values() if r.get("Condition") == "HasGitHub"]
    assert refers_to(role["Properties"]["ManagedPolicyArns"], "PublisherPolicy")
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert "repo:${GitHubRepository}:" in trust["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"][
        "Fn::Sub"], "only the named repository's runs"


# cfn-lint's checks of a Lambda runtime's deprecation compare its end-of-support dates with today's date: the
# template would fail on some later day, not because of a change. Runtimes are chosen by hand, so those are left out.
DATED_CHECKS = ["E2531", "E2533", "W2531"]


def cfn_lint_matches(template: Path, parameters: dict[str, str] | None = None) -> list[Any]:
    """Everything cfn-lint reports (errors and warnings); with `parameters`, for a stack made with those values
    (cfn-lint then resolves Ref and the conditions with them, as CloudFormation would)."""
    require_module("cfnlint")
    from cfnlint.api import ManualArgs, lint_file

    config = ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=DATED_CHECKS)
    if parameters is not None:
        from cfnlint.context.parameters import ParameterSet

        config["parameters"] = [ParameterSet(source=None, parameters=parameters)]
    matches = lint_file(template, config=config)
    for match in matches:
        print(match)
    return list(matches)


def cfn_lint_errors(template: Path) -> list[object]:
    return [m for m in cfn_lint_matches(template) if m.rule.id.startswith("E")]


def test_cfn_lint_finds_no_error():
    errors = cfn_lint_errors(DEPLOY / "cloudformation.yaml")
    assert not errors, "\n".join(str(m) for m in errors)


REQUIRED_PARAMETERS = {"BucketName": "news-bucket", "SenderIdentity": "news.example.com"}
WORKER_PARAMETERS = {"SubscriberStore": "dynamodb", "LambdaCodeBucket": "code-bucket",
                     "WorkerFunctionCodeKey": "worker.zip", "WorkerConcurrency": "20"}


@pytest.mark.parametrize("parameters", [
    pytest.param({}, id="no-workers"),
    pytest.param({"SubscriberStore": "dynamodb", "LambdaCodeBucket": "code-bucket",
                  "PublishFunctionCodeKey": "publish.zip"}, id="publish-function-no-workers"),
    pytest.param(WORKER_PARAMETERS, id="workers"),
    pytest.param({**WORKER_PARAMETERS, "PublishFunctionCodeKey": "publish.zip", "GitHubRepository": "owner/news",
                  "NotificationEmail": "ops@example.com", "PublisherSecret": "s3cret"}, id="workers-and-everything"),
])
def test_cfn_lint_finds_nothing_for_a_stack_with_or_without_workers(parameters):
    matches = cfn_lint_matches(DEPLOY / "cloudformation.yaml", {**REQUIRED_PARAMETERS, **parameters})
    assert not matches, "\n".join(str(m) for m in matches)


def test_cfn_lint_checks_the_worker_parameters_values():
    """The parameterized runs above do resolve the parameters: an out-of-range WorkerConcurrency is reported."""
    matches = cfn_lint_matches(DEPLOY / "cloudformation.yaml",
                               {**REQUIRED_PARAMETERS, **WORKER_PARAMETERS, "WorkerConcurrency": "1"})
    assert any("WorkerConcurrency" in str(m) for m in matches), [str(m) for m in matches]


# ---- the subscribe endpoint: systemd unit, nginx snippet, Lambda handler ----


def test_serve_service_runs_the_endpoint_behind_a_proxy():
    unit = check_service("publisher-serve.service", ["serve"])
    assert one(unit, "Service", "Restart") == "always"
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert "Conflicts" not in unit["Unit"], "it runs beside the publish timer"


def test_nginx_snippet_forwards_exactly_the_endpoint_paths():
    text = (DEPLOY / "nginx" / "publisher-serve.conf").read_text(encoding="utf-8")
    location = re.search(r"location ~ \^/\((.*?)\)\$", text).group(1).split("|")
    assert sorted(location) == ["confirm", "subscribe", "unsubscribe"]
    assert "proxy_pass http://127.0.0.1:8080;" in text and "X-Forwarded-For $remote_addr" in text
    from publisher.config import ServeConfig

    assert ServeConfig().port == 8080 and ServeConfig().host == "127.0.0.1"


def test_lambda_handler_subscribes_through_api_gateway_events(tmp_path, aws, monkeypatch):
    """The real handler module, a real Mangum adapter, moto's SES contact list and SES sending."""
    import base64
    import uuid
    from urllib.parse import urlencode

    import boto3

    root = tmp_path / "newsletter"
    root.mkdir()
    contact_list = f"list-{uuid.uuid4().hex[:8]}"
    (root / "publisher.toml").write_text(
        '[site]\ntitle = "AI 日报"\nurl = "https://news.example.com/"\nlanguage = "zh-CN"\n'
        '[email]\nfrom_address = "news@lambda.example.com"\ntransport = "ses"\n'
        f'[subscribers]\nses_contact_list = "{contact_list}"\n', encoding="utf-8")
    boto3.client("sesv2").create_email_identity(EmailIdentity="news@lambda.example.com")
    monkeypatch.setenv("PUBLISHER_ROOT", str(root))
    monkeypatch.setenv("PUBLISHER_SECRET", "lambda-test-secret-value")
    spec = importlib.util.spec_from_file_location("lambda_handler", DEPLOY / "lambda" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    body = urlencode({"email": "Reader@Example.com", "name": "读者"})
    event = {
        "version": "2.0", "routeKey": "$default", "rawPath": "/subscribe", "rawQueryString": "",
        "headers": {"content-type": "application/x-www-form-urlencoded", "host": "abc.lambda-url.aws"},
        "requestContext": {"http": {"method": "POST", "path": "/subscribe", "sourceIp": "203.0.113.7",
                                    "protocol": "HTTP/1.1"}, "domainName": "abc.lambda-url.aws",
                           "stage": "$default", "requestId": "r1", "accountId": "123456789012",
                           "apiId": "abc", "time": "26/Nov/2026:12:00:00 +0000", "timeEpoch": 0},
        "body": base64.b64encode(body.encode()).decode(), "isBase64Encoded": True,
    }

    class Context:
        function_name, aws_request_id = "publisher-serve", "r1"

    response = module.handler(event, Context())
    assert response["statusCode"] == 200
    assert "请查收确认邮件" in (base64.b64decode(response["body"]).decode() if response.get("isBase64Encoded")
                             else response["body"])
    contact = boto3.client("sesv2").get_contact(ContactListName=contact_list, EmailAddress="reader@example.com")
    assert contact["EmailAddress"] == "reader@example.com"


def test_lambda_handler_refuses_sqlite(tmp_path, monkeypatch):

    root = tmp_path / "newsletter"
    root.mkdir()
    (root / "publisher.toml").write_text('[site]\ntitle = "T"\nurl = "https://e.com/"\n'
                                         '[email]\nfrom_address = "n@e.com"\n', encoding="utf-8")
    monkeypatch.setenv("PUBLISHER_ROOT", str(root))
    monkeypatch.setenv("PUBLISHER_SECRET", "lambda-test-secret-value")
    spec = importlib.util.spec_from_file_location("lambda_handler_sqlite", DEPLOY / "lambda" / "handler.py")
    module = importlib.util.module_from_spec(spec)
    from publisher.errors import PublisherError

    with pytest.raises(PublisherError, match="ses_contact_list"):
        spec.loader.exec_module(module)
