"""The Docker deployment files agree with their schemas, with each other and with Dagster.

No Docker engine is needed: the files are parsed and validated, and the Dagster instance config
is resolved with the same classes the containers load, without connecting to anything.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
INSTANCE_YAML = ROOT / "deploy" / "dagster.yaml"
WORKSPACE = ROOT / "workspace.docker.yaml"
DOCKERFILE = ROOT / "Dockerfile"
INIT_SCRIPT = ROOT / "deploy" / "postgres-init" / "01-databases.sh"

DAGSTER_SERVICES = ("football_code", "dagster_webserver", "dagster_daemon")
COMMANDS = {
    "football_code": "dagster code-server start -h 0.0.0.0 -p 4000 -m football_assets.definitions",
    "dagster_webserver": "dagster-webserver -h 0.0.0.0 -p 3000 -w workspace.docker.yaml",
    "dagster_daemon": "dagster-daemon run",
}
# Compose's "required" interpolation: rendering fails unless the variable is set.
REQUIRED_VAR = re.compile(r"^\$\{[A-Z][A-Z0-9_]*:\?[^}]+\}$")
# scheme://user:password@host/database, where each part may be a ${...} reference.
_PART = r"\$\{[^}]*\}|[^:@/${}]*"
DB_URL = re.compile(
    rf"^[a-z0-9+]+://(?P<user>{_PART}):(?P<password>{_PART})@(?P<host>[^/]+)/(?P<db>.+)$"
)

# Values the stack would see with a typical .env, for resolving `env:` references.
SAMPLE_ENV = {
    "DAGSTER_PG_USERNAME": "football",
    "DAGSTER_PG_PASSWORD": "0123abcd",
    "DAGSTER_PG_HOST": "postgres",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_CURRENT_IMAGE": "football-assets:latest",
}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return _load(WORKFLOW)


@pytest.fixture(scope="module")
def instance_yaml() -> dict[str, Any]:
    return _load(INSTANCE_YAML)


@pytest.fixture
def sample_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in SAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    return SAMPLE_ENV


def _check_jsonschema(builtin_schema: str, path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", builtin_schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{path.name} fails {builtin_schema}:\n{result.stdout}"


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (dotted key path, scalar value) in a parsed YAML document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")
    else:
        yield path, node


def _named_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Named-volume mounts of a service, as {volume key: container path}; binds excluded."""
    mounts = {}
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        if not source.startswith((".", "/", "~", "$")):
            mounts[source] = target
    return mounts


# --- docker-compose.yml --------------------------------------------------------------------


def test_compose_file_follows_the_compose_spec() -> None:
    _check_jsonschema("vendor.compose-spec", COMPOSE)


def test_compose_runs_postgres_and_the_three_dagster_processes(services: dict[str, Any]) -> None:
    assert set(services) >= {"postgres", *DAGSTER_SERVICES}
    for name, expected in COMMANDS.items():
        command = _command(services[name])
        assert command[: len(expected.split())] == expected.split(), name


def test_every_password_in_compose_is_a_required_variable(compose: dict[str, Any]) -> None:
    passwords = [(path, value) for path, value in _walk(compose) if "PASSWORD" in path.upper()]
    assert passwords, "expected POSTGRES_PASSWORD / DAGSTER_PG_PASSWORD entries"
    for path, value in passwords:
        assert REQUIRED_VAR.match(str(value)), f"{path} must be ${{VAR:?message}}, not {value!r}"
    # Connection URLs carry the password too: it must be a required variable as well.
    urls = [(p, v) for p, v in _walk(compose) if isinstance(v, str) and "@" in v and "://" in v]
    assert urls, "expected DATABASE_URL"
    for path, value in urls:
        match = DB_URL.match(value)
        assert match, f"{path}: not a user:password@host/db URL: {value!r}"
        assert REQUIRED_VAR.match(match["password"]), f"{path} embeds a literal password"


def test_compose_takes_the_api_key_from_the_environment(services: dict[str, Any]) -> None:
    for name in DAGSTER_SERVICES:
        key = services[name]["environment"]["FOOTBALL_DATA_API_KEY"]
        assert re.fullmatch(r"\$\{FOOTBALL_DATA_API_KEY(:?-)?\}", key), f"{name}: {key!r}"


def test_postgres_image_pins_a_major_version(services: dict[str, Any]) -> None:
    image = services["postgres"]["image"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?(-[a-z0-9.]+)?", image), image


def test_postgres_data_volume_is_where_the_image_keeps_data(services: dict[str, Any]) -> None:
    # From 18 on the image stores data under /var/lib/postgresql/<major>/docker and refuses
    # to start with a volume on the old /var/lib/postgresql/data path.
    major = int(services["postgres"]["image"].split(":")[1].split(".")[0].split("-")[0])
    expected = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    assert expected in _named_mounts(services["postgres"]).values()


def test_postgres_healthcheck_uses_pg_isready(services: dict[str, Any]) -> None:
    test = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))


@pytest.mark.parametrize("name", ["dagster_webserver", "dagster_daemon"])
def test_webserver_and_daemon_start_after_healthy_postgres_and_code_server(
    services: dict[str, Any], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert "football_code" in depends_on
    assert "healthcheck" in services["football_code"]


def test_volumes_are_named_and_survive_compose_down(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = compose["volumes"]
    used = {key for service in services.values() for key in _named_mounts(service)}
    assert used <= set(declared), f"undeclared volumes: {used - set(declared)}"
    for key, spec in declared.items():
        # An explicit name keeps the volume independent of the compose project name, which
        # is also what lets run containers (started outside compose) mount it.
        assert spec and spec.get("name"), f"volume {key} needs an explicit name"
    assert {"postgres", "football_code", "dagster_webserver"} <= {
        name for name, service in services.items() if _named_mounts(service)
    }


def test_warehouse_database_is_separate_and_created_on_first_start(
    services: dict[str, Any],
) -> None:
    postgres_env = services["postgres"]["environment"]
    dagster_env = services["dagster_daemon"]["environment"]
    assert dagster_env["DAGSTER_PG_DB"] == postgres_env["POSTGRES_DB"]
    url = DB_URL.match(dagster_env["DATABASE_URL"])
    assert url, dagster_env["DATABASE_URL"]
    warehouse_db = url["db"]
    assert warehouse_db == postgres_env["POSTGRES_WAREHOUSE_DB"]
    assert warehouse_db != postgres_env["POSTGRES_DB"]
    assert any(
        str(entry).split(":")[1] == "/docker-entrypoint-initdb.d"
        for entry in services["postgres"]["volumes"]
    )
    assert INIT_SCRIPT.read_text(encoding="utf-8").count("POSTGRES_WAREHOUSE_DB") >= 1
    syntax = subprocess.run(["bash", "-n", str(INIT_SCRIPT)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr


def test_code_server_advertises_its_own_image_for_runs(services: dict[str, Any]) -> None:
    code = services["football_code"]
    assert "build" in code
    assert code["environment"]["DAGSTER_CURRENT_IMAGE"] == code["image"]
    # One image for every Dagster process, so a run executes exactly the code the UI shows.
    assert {services[name]["image"] for name in DAGSTER_SERVICES} == {code["image"]}


def test_webserver_workspace_points_at_the_code_server(services: dict[str, Any]) -> None:
    workspace = _load(WORKSPACE)
    [entry] = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["host"] == "football_code"
    assert server["location_name"] == "football_assets"
    port = _command(services["football_code"])
    assert str(server["port"]) == port[port.index("-p") + 1]


# --- deploy/dagster.yaml -------------------------------------------------------------------


def test_instance_config_passes_dagster_validation(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    # Dagster reads `dagster.yaml` from a directory, as it does from DAGSTER_HOME.
    (tmp_path / "dagster.yaml").write_text(INSTANCE_YAML.read_text(encoding="utf-8"))
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert config["telemetry"] == {"enabled": False}


def test_instance_storage_is_postgres_from_env_vars_only(
    instance_yaml: dict[str, Any], services: dict[str, Any], sample_env: dict[str, str]
) -> None:
    import sqlalchemy as sa
    from dagster._config import process_config
    from dagster._core.storage.config import pg_config
    from dagster_postgres.utils import pg_url_from_config

    postgres = instance_yaml["storage"]["postgres"]
    db = postgres["postgres_db"]
    for field in ("username", "password", "hostname", "db_name", "port"):
        assert set(db[field]) == {"env"}, f"{field} must come from an env var"
        for name in DAGSTER_SERVICES:  # every container must be given the variable
            assert db[field]["env"] in services[name]["environment"], (name, field)

    resolved = process_config(pg_config(), postgres)
    assert resolved.success and resolved.value is not None, resolved.errors
    url = pg_url_from_config(resolved.value)
    parts = urlsplit(url)
    assert (parts.hostname, parts.port, parts.path) == ("postgres", 5432, "/dagster")
    # dagster-postgres' event log only works on psycopg2 (psycopg 3 rejects its NOTIFY).
    assert sa.engine.make_url(url).get_dialect().driver == "psycopg2"


def test_runs_are_queued_with_concurrency_limits(instance_yaml: dict[str, Any]) -> None:
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._serdes.config_class import ConfigurableClassData

    coordinator = instance_yaml["run_coordinator"]
    rehydrated = ConfigurableClassData(
        coordinator["module"], coordinator["class"], yaml.safe_dump(coordinator.get("config", {}))
    ).rehydrate()
    assert isinstance(rehydrated, QueuedRunCoordinator)

    runs = instance_yaml["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1
    api_limits = [
        limit for limit in runs["tag_concurrency_limits"] if limit["key"] == "football/api"
    ]
    assert [limit["limit"] for limit in api_limits] == [1]
    # The API-calling assets share the `football_api` pool; unconfigured pools get this limit.
    assert instance_yaml["concurrency"]["pools"]["default_limit"] == 1


def test_runs_launch_in_containers_on_the_compose_network(
    instance_yaml: dict[str, Any],
    compose: dict[str, Any],
    services: dict[str, Any],
    sample_env: dict[str, str],
) -> None:
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_docker import DockerRunLauncher

    launcher_yaml = instance_yaml["run_launcher"]
    config = launcher_yaml["config"]
    launcher = ConfigurableClassData(
        launcher_yaml["module"], launcher_yaml["class"], yaml.safe_dump(config)
    ).rehydrate()
    assert isinstance(launcher, DockerRunLauncher)
    assert launcher.image == sample_env["DAGSTER_CURRENT_IMAGE"]

    network_names = {spec["name"] for spec in compose["networks"].values()}
    assert launcher.networks == [config["network"]]
    assert config["network"] in network_names

    # The daemon copies each forwarded variable from its own environment and fails the run
    # launch if one is missing, so all must be set on the daemon.
    daemon_env = services["dagster_daemon"]["environment"]
    missing = [name for name in config["env_vars"] if "=" not in name and name not in daemon_env]
    assert not missing, f"not set on dagster_daemon: {missing}"
    for needed in ("DATABASE_URL", "FOOTBALL_DATA_API_KEY", "DAGSTER_PG_PASSWORD"):
        assert needed in config["env_vars"]


def test_run_containers_mount_the_same_volumes_as_compose(
    instance_yaml: dict[str, Any], compose: dict[str, Any], services: dict[str, Any]
) -> None:
    by_name = {spec["name"]: key for key, spec in compose["volumes"].items()}
    compose_targets = {
        key: target
        for service in services.values()
        for key, target in _named_mounts(service).items()
    }
    run_mounts = instance_yaml["run_launcher"]["config"]["container_kwargs"]["volumes"]
    assert run_mounts
    for mount in run_mounts:
        volume_name, target = mount.split(":")[:2]
        assert volume_name in by_name, f"{volume_name} is not a compose volume name"
        assert compose_targets[by_name[volume_name]] == target, mount


def test_step_logs_written_by_runs_are_readable_by_the_webserver(
    instance_yaml: dict[str, Any], services: dict[str, Any]
) -> None:
    base_dir = instance_yaml["compute_logs"]["config"]["base_dir"]
    run_targets = [
        mount.split(":")[1]
        for mount in instance_yaml["run_launcher"]["config"]["container_kwargs"]["volumes"]
    ]
    webserver_targets = _named_mounts(services["dagster_webserver"]).values()
    assert any(base_dir.startswith(target) for target in run_targets)
    assert any(base_dir.startswith(target) for target in webserver_targets)


# --- Dockerfile ----------------------------------------------------------------------------


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8")
    logical = re.sub(r"\\\n(\s*#.*\n)*", " ", text)  # join continuation lines
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, rest in _dockerfile_instructions():
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, rest))
    return stages


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    instructions = _dockerfile_instructions()
    args = {}
    for keyword, rest in instructions:
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.partition("=")
            args[name] = default
    bases = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            base = rest.split()[0]
            for name, default in args.items():
                base = base.replace(f"${{{name}}}", default).replace(f"${name}", default)
            bases.append(base)
    assert len(bases) >= 2
    assert set(bases) == {"python:3.11-slim"}
    final = _stages()[-1]
    assert any(k == "COPY" and "--from=" in rest for k, rest in final), "final stage copies build"


def test_image_runs_as_non_root_user() -> None:
    users = [rest for keyword, rest in _stages()[-1] if keyword == "USER"]
    assert users, "the final stage must switch to a USER"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1] == "dagster"


def test_image_carries_the_instance_config_and_workspace() -> None:
    final = _stages()[-1]
    env = " ".join(rest for keyword, rest in final if keyword == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/dagster_home" in env
    copies = [rest for keyword, rest in final if keyword == "COPY"]
    assert any("deploy/dagster.yaml" in c and "$DAGSTER_HOME/dagster.yaml" in c for c in copies)
    assert any("workspace.docker.yaml" in c for c in copies)
    assert [rest for keyword, rest in final if keyword == "WORKDIR"][-1] == "/opt/dagster/app"
    exposed = {port for keyword, rest in final if keyword == "EXPOSE" for port in rest.split()}
    assert {"3000", "4000"} <= exposed


def test_image_creates_every_volume_mount_point_for_the_dagster_user(
    instance_yaml: dict[str, Any], services: dict[str, Any]
) -> None:
    # Docker seeds a new named volume from the image's directory, owner included: a missing
    # directory would leave the volume root-owned and unwritable by the `dagster` user.
    text = DOCKERFILE.read_text(encoding="utf-8").replace(
        "$DAGSTER_HOME", "/opt/dagster/dagster_home"
    )
    targets = {
        target for name in DAGSTER_SERVICES for target in _named_mounts(services[name]).values()
    }
    targets |= {
        mount.split(":")[1]
        for mount in instance_yaml["run_launcher"]["config"]["container_kwargs"]["volumes"]
    }
    missing = [target for target in sorted(targets) if target not in text]
    assert not missing, f"not created in the Dockerfile: {missing}"


# --- .github/workflows/ci.yml --------------------------------------------------------------


def test_workflow_follows_the_github_workflow_schema() -> None:
    _check_jsonschema("vendor.github-workflows", WORKFLOW)


def test_workflow_runs_only_for_main(workflow: dict[Any, Any]) -> None:
    triggers = workflow["on"] if "on" in workflow else workflow[True]  # YAML 1.1: `on` is true
    assert set(triggers) == {"push", "pull_request"}
    for event in ("push", "pull_request"):
        assert triggers[event]["branches"] == ["main"]


def test_workflow_jobs(workflow: dict[Any, Any]) -> None:
    jobs = workflow["jobs"]
    assert set(jobs) >= {"lint", "test", "image", "deploy"}
    assert any(step.get("run", "").strip() == "bash .ci/run" for step in jobs["test"]["steps"])
    lint = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    assert "ruff check" in lint and "ruff format --check" in lint
    image = " ".join(step.get("run", "") for step in jobs["image"]["steps"])
    assert "docker build" in image and "docker compose config" in image


AWS_CONFIGURED = "env.AWS_ROLE_ARN != '' && env.AWS_REGION != ''"


def test_deploy_runs_only_for_pushes_to_main(workflow: dict[Any, Any]) -> None:
    deploy = workflow["jobs"]["deploy"]
    condition = deploy["if"].replace('"', "'")
    assert "github.ref == 'refs/heads/main'" in condition
    assert "github.event_name == 'push'" in condition
    assert set(deploy["needs"]) >= {"lint", "test", "image"}


def test_deploy_authenticates_by_oidc_on_that_job_only(workflow: dict[Any, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        granted = (job.get("permissions") or {}).get("id-token")
        assert granted == ("write" if name == "deploy" else None), name
    deploy = workflow["jobs"]["deploy"]
    assert "vars.AWS_ROLE_ARN" in deploy["env"]["AWS_ROLE_ARN"]
    assert "vars.AWS_REGION" in deploy["env"]["AWS_REGION"]
    [login] = [s for s in deploy["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert login["with"]["role-to-assume"] == "${{ env.AWS_ROLE_ARN }}"
    # No long-lived keys anywhere in the workflow.
    text = WORKFLOW.read_text(encoding="utf-8")
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


def test_deploy_pushes_to_ecr_and_deploys_the_stack_with_the_new_tag(
    workflow: dict[Any, Any],
) -> None:
    steps = workflow["jobs"]["deploy"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert any(u.startswith("aws-actions/amazon-ecr-login@") for u in uses)
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "docker push" in runs
    assert "aws cloudformation deploy" in runs and "deploy/aws/template.yaml" in runs
    assert '"ImageUri=$IMAGE_URI"' in runs and "${GITHUB_SHA::12}" in runs


def test_deploy_is_skipped_green_without_aws_settings(workflow: dict[Any, Any]) -> None:
    steps = workflow["jobs"]["deploy"]["steps"]
    notice, *rest = steps
    assert notice["if"] == "env.AWS_ROLE_ARN == '' || env.AWS_REGION == ''"
    assert "exit" not in notice["run"]
    for step in rest:
        assert step.get("if") == AWS_CONFIGURED, step.get("name") or step.get("uses")


# --- every documented variable reaches every container -------------------------------------

CONFIGURATION = ROOT / "docs" / "configuration.md"
ENV_EXAMPLE = ROOT / ".env.example"
ECS_INSTANCE_YAML = ROOT / "deploy" / "aws" / "dagster.yaml"
ECS_TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
PACKAGE = ROOT / "football_assets"

# Where a variable must be, by kind of place. A variable may skip a kind only for a reason
# written here; everything else in docs/configuration.md's table must be everywhere.
PLACES = (".env.example", "compose", "docker launcher", "ecs launcher", "ecs task")
CONTAINERS = ("compose", "docker launcher", "ecs launcher", "ecs task")
EXEMPT: dict[str, dict[str, str]] = {
    # The embedded server is what runs when DATABASE_URL is unset; every container has
    # DATABASE_URL (compose builds it, ECS injects it from Secrets Manager).
    "FOOTBALL_EMBEDDED_PGDATA": dict.fromkeys(CONTAINERS, "containers always have DATABASE_URL"),
    "DAGSTER_HOME": {
        # `dagster dev` picks its instance before it reads .env, so it belongs in the shell
        # (.env.example says so in a comment).
        ".env.example": "set in the shell, not .env",
        # The image sets it (ENV in the Dockerfile, checked below); run containers inherit it.
        "compose": "the image sets it",
        "docker launcher": "the image sets it",
    },
    # The deployments set json themselves (compose's default, the ECS tasks); in .env it would
    # turn local terminals into JSON lines too (.env.example keeps it commented out).
    "FOOTBALL_LOG_FORMAT": {".env.example": "local terminals keep the display"},
}


def readme_configuration_variables() -> set[str]:
    """The first column of the table under docs/configuration.md's `## Environment variables`."""
    text = CONFIGURATION.read_text(encoding="utf-8")
    section = text.split("\n## Environment variables\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|", section, re.MULTILINE))


def env_example_variables() -> set[str]:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))


def variables_by_place() -> dict[str, tuple[str, set[str]]]:
    """{place: (kind, the variable names it sets)} for every place a container gets them."""
    from football_assets_tests.test_aws_template import containers, load_template

    compose = _load(COMPOSE)
    places: dict[str, tuple[str, set[str]]] = {".env.example": (".env.example", set())}
    places[".env.example"] = (".env.example", env_example_variables())
    for name in DAGSTER_SERVICES:
        places[f"compose {name}"] = ("compose", set(compose["services"][name]["environment"]))
    docker = _load(INSTANCE_YAML)["run_launcher"]["config"]
    places["DockerRunLauncher env_vars"] = ("docker launcher", set(docker["env_vars"]))
    ecs = _load(ECS_INSTANCE_YAML)["run_launcher"]["config"]
    places["EcsRunLauncher env_vars/secrets"] = (
        "ecs launcher",
        set(ecs["env_vars"]) | {secret["name"] for secret in ecs["secrets"]},
    )
    for where, container in containers(load_template(ECS_TEMPLATE)):
        names = {v["Name"] for v in container.get("Environment", [])}
        names |= {s["Name"] for s in container.get("Secrets", [])}
        places[f"ECS {where}"] = ("ecs task", names)
    return places


def missing_variables(documented: set[str], places: dict[str, tuple[str, set[str]]]) -> list[str]:
    problems = []
    for variable in sorted(documented):
        for place, (kind, names) in places.items():
            if variable not in names and kind not in EXEMPT.get(variable, {}):
                problems.append(f"{variable} is not in {place}")
    return problems


def test_every_documented_variable_reaches_every_container() -> None:
    documented = readme_configuration_variables()
    assert {"FOOTBALL_DATA_API_KEY", "DATABASE_URL", "FOOTBALL_OUTPUT_DIR"} <= documented
    assert missing_variables(documented, variables_by_place()) == []


def test_variables_comparison_catches_a_missing_one() -> None:
    places = variables_by_place()
    # As before this test existed: compose did not pass the timeouts on.
    places["compose football_code"][1].discard("FOOTBALL_DATA_READ_TIMEOUT")
    places["EcsRunLauncher env_vars/secrets"][1].discard("FOOTBALL_DATA_API_KEY")
    # A row the lead adds to docs/configuration.md is picked up like any other.
    documented = readme_configuration_variables() | {"FOOTBALL_NEW_SETTING"}
    problems = missing_variables(documented, places)
    assert "FOOTBALL_DATA_READ_TIMEOUT is not in compose football_code" in problems
    assert "FOOTBALL_DATA_API_KEY is not in EcsRunLauncher env_vars/secrets" in problems
    assert len([p for p in problems if p.startswith("FOOTBALL_NEW_SETTING ")]) == len(places)


def test_nothing_undocumented_is_set_or_read() -> None:
    """The other way round: what .env.example sets is documented (or only feeds compose's own
    interpolation), and every FOOTBALL_* variable a container gets or the package reads is in
    docs/configuration.md's table."""
    documented = readme_configuration_variables()
    compose_text = COMPOSE.read_text(encoding="utf-8")
    for name in env_example_variables() - documented:
        assert f"${{{name}" in compose_text, f".env.example sets {name}, which nothing reads"
    application = re.compile(r"^(FOOTBALL_[A-Z0-9_]+|DATABASE_URL)$")
    passed = {
        n
        for place, (_, names) in variables_by_place().items()
        if place != ".env.example"
        for n in names
    }
    read = set()
    for source in PACKAGE.rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        read |= set(re.findall(r"[\"'](FOOTBALL_[A-Z0-9_]+|DATABASE_URL)[\"']", text))
    undocumented = {n for n in passed | read if application.match(n)} - documented
    assert not undocumented, f"not in docs/configuration.md's table: {sorted(undocumented)}"


def test_exempt_variables_are_set_where_the_exemption_says() -> None:
    final_env = " ".join(rest for keyword, rest in _stages()[-1] if keyword == "ENV")
    assert "DAGSTER_HOME=" in final_env
    assert "# DAGSTER_HOME=" in ENV_EXAMPLE.read_text(encoding="utf-8")
    assert set(EXEMPT) <= readme_configuration_variables()
