"""deploy/aws/: the CloudFormation template's invariants, cfn-lint, and the ECS instance config.

Each invariant is a function returning what violates it. The real template must violate
nothing, and each is shown to catch a deliberate break of a copy of the template
(`test_each_invariant_catches_its_break`), so none of them passes vacuously.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
AWS = ROOT / "deploy" / "aws"
TEMPLATE = AWS / "template.yaml"
ECS_INSTANCE = AWS / "dagster.yaml"
ECS_WORKSPACE = AWS / "workspace.yaml"
DOCKERFILE = ROOT / "Dockerfile"

# The values the application treats as secrets; on ECS they arrive only as `secrets`.
SECRET_VARIABLES = {"FOOTBALL_DATA_API_KEY", "DATABASE_URL", "DAGSTER_PG_PASSWORD"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET(?!_ARN)|TOKEN|API_KEY$|CREDENTIAL", re.IGNORECASE)
DAGSTER_CONTAINERS = ("code-server", "webserver", "daemon")

Template = dict[str, Any]


# ---- a YAML loader that understands CloudFormation's short-form tags ------------------------


class CfnLoader(yaml.SafeLoader):
    """`!Ref X` -> {"Ref": X}, `!GetAtt A.B` -> {"Fn::GetAtt": [A, B]}, `!Sub ...` -> ..."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        return {"Fn::GetAtt": value.split(".", 1)}
    return {f"Fn::{suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE) -> Template:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def resources(t: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in t["Resources"].items() if r["Type"] == kind}


def containers(t: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, task in resources(t, "AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            yield f"{name}/{container['Name']}", container


def default(t: Template, value: Any) -> Any:
    """A property's value as deployed with every parameter at its default."""
    if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in t["Parameters"]:
        return t["Parameters"][value["Ref"]].get("Default")
    return value


def is_true(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")
    else:
        yield path, node


def statements(t: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy statement of the template's roles and managed policies."""
    for name, resource in t["Resources"].items():
        props = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"}:
            documents = [props["PolicyDocument"]]
        for document in documents:
            found = document["Statement"]
            for statement in found if isinstance(found, list) else [found]:
                yield name, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---- the invariants -------------------------------------------------------------------------


def secrets_in_plain_sight(t: Template) -> list[str]:
    """No secret in a container's Environment, a parameter default, or an output."""
    problems = []
    for where, container in containers(t):
        for variable in container.get("Environment", []):
            name, value = variable["Name"], json.dumps(variable.get("Value"))
            # *_FROM variables hold where a secret is (an ARN the launcher hands ECS), not it.
            if name in SECRET_VARIABLES or (SECRET_NAME.search(name) and "_FROM" not in name):
                problems.append(f"{where}: {name} is a plain environment value")
            if "{{resolve:" in value:
                problems.append(f"{where}: {name} resolves a secret into the environment")
        given = {s["Name"] for s in container.get("Secrets", [])}
        if container["Name"] in DAGSTER_CONTAINERS and not given >= SECRET_VARIABLES:
            problems.append(f"{where}: secrets {sorted(SECRET_VARIABLES - given)} not as valueFrom")
        for secret in container.get("Secrets", []):
            if "ValueFrom" not in secret or "{{resolve:" in json.dumps(secret["ValueFrom"]):
                problems.append(f"{where}: {secret['Name']} is not a valueFrom reference")
    for name, parameter in t.get("Parameters", {}).items():
        if SECRET_NAME.search(name) and (not parameter.get("NoEcho") or "Default" in parameter):
            problems.append(f"parameter {name}: a secret parameter needs NoEcho and no Default")
    for name, output in t.get("Outputs", {}).items():
        text = json.dumps(output)
        if "{{resolve:" in text or "SecretString" in text:
            problems.append(f"output {name} exposes a secret value")
    # Nothing in the template is a literal password: RDS gets its own by dynamic reference.
    for _, db in resources(t, "AWS::RDS::DBInstance").items():
        password = json.dumps(db["Properties"].get("MasterUserPassword", ""))
        if "{{resolve:secretsmanager:" not in password:
            problems.append("the database password is not a Secrets Manager reference")
    return problems


def containers_without_awslogs(t: Template) -> list[str]:
    log_groups = resources(t, "AWS::Logs::LogGroup")
    problems = []
    for where, container in containers(t):
        config = container.get("LogConfiguration") or {}
        group = (config.get("Options") or {}).get("awslogs-group")
        if config.get("LogDriver") != "awslogs":
            problems.append(f"{where}: log driver {config.get('LogDriver')!r}, not awslogs")
        elif not (isinstance(group, dict) and group.get("Ref") in log_groups):
            problems.append(f"{where}: logs to {group!r}, not a log group of this template")
    for name, group in log_groups.items():
        if not default(t, group["Properties"].get("RetentionInDays")):
            problems.append(f"log group {name} keeps logs forever (no RetentionInDays)")
    return problems


def unprotected_databases(t: Template) -> list[str]:
    problems = []
    databases = resources(t, "AWS::RDS::DBInstance")
    if not databases:
        problems.append("no RDS instance")
    for name, db in databases.items():
        props = db["Properties"]
        if not is_true(props.get("StorageEncrypted")):
            problems.append(f"{name}: storage not encrypted")
        if not is_true(default(t, props.get("DeletionProtection"))):
            problems.append(f"{name}: no deletion protection by default")
        if int(default(t, props.get("BackupRetentionPeriod")) or 0) < 1:
            problems.append(f"{name}: automated backups off")
        if is_true(props.get("PubliclyAccessible")):
            problems.append(f"{name}: publicly accessible")
        if db.get("DeletionPolicy") not in {"Snapshot", "Retain"}:
            problems.append(f"{name}: a stack delete would drop it without a snapshot")
    return problems


def public_buckets(t: Template) -> list[str]:
    problems = []
    for name, bucket in resources(t, "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        block = props.get("PublicAccessBlockConfiguration") or {}
        for flag in (
            "BlockPublicAcls",
            "BlockPublicPolicy",
            "IgnorePublicAcls",
            "RestrictPublicBuckets",
        ):
            if not is_true(block.get(flag)):
                problems.append(f"{name}: {flag} is not true")
        if not props.get("BucketEncryption"):
            problems.append(f"{name}: no default encryption")
        if (props.get("VersioningConfiguration") or {}).get("Status") != "Enabled":
            problems.append(f"{name}: not versioned")
    return problems


def public_webserver(t: Template) -> list[str]:
    """With every parameter at its default, nothing is reachable from the internet."""
    problems = []
    for name, lb in resources(t, "AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        scheme = default(t, lb["Properties"].get("Scheme", "internet-facing"))
        if scheme != "internal":
            problems.append(f"{name}: scheme {scheme!r} by default")
    for name, service in resources(t, "AWS::ECS::Service").items():
        vpc = service["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
        if default(t, vpc.get("AssignPublicIp", "DISABLED")) != "DISABLED":
            problems.append(f"{name}: public IP by default")
    for name, group in resources(t, "AWS::EC2::SecurityGroup").items():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            cidr = default(t, rule.get("CidrIp"))
            if cidr in {"0.0.0.0/0"} or rule.get("CidrIpv6") == "::/0":
                problems.append(f"{name}: ingress open to the internet by default")
    allowed = t["Parameters"].get("WebserverAllowedCidr", {}).get("AllowedPattern")
    if not allowed or re.match(allowed, "0.0.0.0/0"):
        problems.append("WebserverAllowedCidr accepts 0.0.0.0/0")
    return problems


def broad_launcher_permissions(t: Template) -> list[str]:
    """iam:PassRole and ecs:RunTask never on "*"; PassRole only to ECS tasks."""
    problems = []
    for name, statement in statements(t):
        if statement.get("Effect") != "Allow":
            continue
        actions = {str(a).lower() for a in as_list(statement.get("Action", []))}
        targets = as_list(statement.get("Resource", []))
        for dangerous in ("iam:passrole", "ecs:runtask"):
            if {dangerous, "*", dangerous.split(":")[0] + ":*"} & actions and "*" in targets:
                problems.append(f"{name}: {dangerous} on Resource '*'")
        if "iam:passrole" in actions:
            passed_to = statement.get("Condition", {}).get("StringEquals", {})
            if passed_to.get("iam:PassedToService") != "ecs-tasks.amazonaws.com":
                problems.append(f"{name}: iam:PassRole not limited to ECS tasks")
    if not any(
        "iam:passrole" in {str(a).lower() for a in as_list(s.get("Action", []))}
        for _, s in statements(t)
    ):
        problems.append("no statement lets the launcher pass the run roles")
    return problems


def services_without_health_checks(t: Template) -> list[str]:
    problems = []
    for where, container in containers(t):
        if container.get("Essential", True) and not container.get("HealthCheck"):
            problems.append(f"{where}: no health check")
    services = resources(t, "AWS::ECS::Service")
    if len(services) != 3:
        problems.append(f"expected the three Dagster services, found {sorted(services)}")
    return problems


def diverging_container_settings(t: Template) -> list[str]:
    """Every Dagster container loads the same instance: the same environment and secrets."""
    seen = {
        where: (
            json.dumps(c.get("Environment"), sort_keys=True),
            json.dumps(c.get("Secrets"), sort_keys=True),
        )
        for where, c in containers(t)
    }
    first = next(iter(seen.values()))
    return [f"{where}: environment/secrets differ" for where, s in seen.items() if s != first]


INVARIANTS: list[Callable[[Template], list[str]]] = [
    secrets_in_plain_sight,
    containers_without_awslogs,
    unprotected_databases,
    public_buckets,
    public_webserver,
    broad_launcher_permissions,
    services_without_health_checks,
    diverging_container_settings,
]


@pytest.mark.parametrize("invariant", INVARIANTS, ids=lambda f: f.__name__)
def test_template_invariant(template: Template, invariant: Callable[[Template], list[str]]) -> None:
    assert invariant(template) == []


# ---- each invariant fails on a deliberate break ---------------------------------------------


def _container(t: Template, name: str) -> dict[str, Any]:
    return next(c for where, c in containers(t) if where.endswith(f"/{name}"))


def _passrole(t: Template) -> dict[str, Any]:
    return next(s for _, s in statements(t) if "iam:PassRole" in as_list(s.get("Action", [])))


def _break_secret(t: Template) -> None:
    _container(t, "daemon")["Environment"].append(
        {"Name": "FOOTBALL_DATA_API_KEY", "Value": "{{resolve:ssm:/football-assets/api-key}}"}
    )


def _break_secret_output(t: Template) -> None:
    t["Outputs"]["Leak"] = {
        "Value": {"Fn::Sub": "{{resolve:secretsmanager:${DatabaseSecret}:SecretString:password}}"}
    }


def _break_awslogs(t: Template) -> None:
    _container(t, "webserver").pop("LogConfiguration")


def _break_retention(t: Template) -> None:
    t["Resources"]["RunsLogGroup"]["Properties"].pop("RetentionInDays")


def _break_encryption(t: Template) -> None:
    t["Resources"]["Database"]["Properties"]["StorageEncrypted"] = False


def _break_deletion_protection(t: Template) -> None:
    t["Parameters"]["DeletionProtection"]["Default"] = "false"


def _break_public_access_block(t: Template) -> None:
    block = t["Resources"]["SummaryBucket"]["Properties"]["PublicAccessBlockConfiguration"]
    block["RestrictPublicBuckets"] = False


def _break_scheme(t: Template) -> None:
    t["Parameters"]["WebserverLoadBalancerScheme"]["Default"] = "internet-facing"


def _break_open_cidr(t: Template) -> None:
    t["Parameters"]["WebserverAllowedCidr"]["Default"] = "0.0.0.0/0"


def _break_passrole(t: Template) -> None:
    _passrole(t)["Resource"] = "*"


def _break_passrole_condition(t: Template) -> None:
    _passrole(t).pop("Condition")


def _break_health_check(t: Template) -> None:
    _container(t, "daemon").pop("HealthCheck")


def _break_divergence(t: Template) -> None:
    _container(t, "webserver")["Environment"] = [
        v for v in _container(t, "webserver")["Environment"] if v["Name"] != "FOOTBALL_LOG_FORMAT"
    ]


BREAKS = [
    (secrets_in_plain_sight, _break_secret),
    (secrets_in_plain_sight, _break_secret_output),
    (containers_without_awslogs, _break_awslogs),
    (containers_without_awslogs, _break_retention),
    (unprotected_databases, _break_encryption),
    (unprotected_databases, _break_deletion_protection),
    (public_buckets, _break_public_access_block),
    (public_webserver, _break_scheme),
    (public_webserver, _break_open_cidr),
    (broad_launcher_permissions, _break_passrole),
    (broad_launcher_permissions, _break_passrole_condition),
    (services_without_health_checks, _break_health_check),
    (diverging_container_settings, _break_divergence),
]


@pytest.mark.parametrize(
    ("invariant", "breakage"), BREAKS, ids=[b.__name__.removeprefix("_break_") for _, b in BREAKS]
)
def test_each_invariant_catches_its_break(
    template: Template,
    invariant: Callable[[Template], list[str]],
    breakage: Callable[[Template], None],
) -> None:
    broken = copy.deepcopy(template)
    breakage(broken)
    assert invariant(broken), f"{invariant.__name__} missed {breakage.__name__}"


# ---- cfn-lint and CloudFormation's own YAML rules -------------------------------------------


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert executable, "cfn-lint is not installed (pip install -e '.[dev]')"
    return subprocess.run(
        [executable, "--format", "parseable", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cfn_lint_is_clean() -> None:
    # Rules ignored on purpose would be listed in the template's Metadata with a reason; none is.
    assert "Metadata" not in load_template()
    result = cfn_lint(TEMPLATE)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text(
        TEMPLATE.read_text(encoding="utf-8").replace("LogDriver: awslogs", "LogDriver: awslog", 1)
    )
    assert cfn_lint(broken).returncode != 0


def test_template_has_no_yaml_aliases() -> None:
    # CloudFormation refuses them ("YAML aliases are not allowed in CloudFormation templates"),
    # though PyYAML and cfn-lint accept them.
    events = yaml.parse(TEMPLATE.read_text(encoding="utf-8"), Loader=CfnLoader)
    assert not [e for e in events if isinstance(e, yaml.AliasEvent)]


def test_the_failed_run_filter_matches_a_failed_runs_json_line(
    template: Template, tmp_path: Path
) -> None:
    """The metric filter's pattern against what a failing run really writes on stdout."""
    pattern = next(iter(resources(template, "AWS::Logs::MetricFilter").values()))["Properties"][
        "FilterPattern"
    ]
    # The pattern's form here: { ($.field = "value") || ($.field = "other") }.
    terms = re.findall(r'\(?\s*\$\.(\w+)\s*=\s*"([^"]+)"\s*\)?', pattern)
    assert terms and re.fullmatch(r"\{[^{}]*\}", pattern), f"unexpected pattern {pattern!r}"
    assert len(terms) == 1 or "||" in pattern

    def counted(event: dict[str, Any]) -> bool:
        return any(event.get(field) == value for field, value in terms)

    home = tmp_path / "home"
    home.mkdir()
    instance = yaml.safe_load(ECS_INSTANCE.read_text(encoding="utf-8"))
    (home / "dagster.yaml").write_text(yaml.safe_dump({"python_logs": instance["python_logs"]}))
    script = textwrap.dedent(
        """
        import dagster as dg

        @dg.asset
        def ok() -> None: ...

        @dg.asset
        def broken() -> None:
            raise RuntimeError("boom")

        instance = dg.DagsterInstance.get()
        dg.materialize([ok], instance=instance)
        dg.materialize([broken], instance=instance, raise_on_error=False)
        """
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "FOOTBALL_LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    # One failed run counts once (its step's failure does not), the successful run not at all.
    matching = [e for e in events if counted(e)]
    assert len(matching) == 1, [e.get("event_type") for e in events]
    assert matching[0]["run_id"] and "broken" in json.dumps(matching[0])
    assert any(e.get("event_type") == "STEP_FAILURE" for e in events)


# ---- deploy/aws/dagster.yaml: the ECS instance ----------------------------------------------


def _template_environment(t: Template) -> dict[str, Any]:
    return {v["Name"]: v["Value"] for v in _container(t, "daemon")["Environment"]}


@pytest.fixture
def ecs_env(template: Template, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What the daemon's task would see: the template's environment with sample values."""
    values = {}
    for name in _template_environment(template):
        values[name] = f"sample-{name.lower()}"
    values.update(
        {
            "DAGSTER_PG_PORT": "5432",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "DAGSTER_PG_PASSWORD": "from-secrets-manager",
            "DAGSTER_ECS_RUN_FAMILY_PREFIX": "football",
        }
    )
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def test_ecs_instance_config_passes_dagster_validation(tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text(ECS_INSTANCE.read_text(encoding="utf-8"))
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert config["run_launcher"]["class"] == "EcsRunLauncher"


def test_ecs_launcher_and_compute_logs_resolve(ecs_env: dict[str, str]) -> None:
    """The classes the containers load, built from the file's config (no AWS call is made)."""
    from dagster._config import process_config
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    instance = yaml.safe_load(ECS_INSTANCE.read_text(encoding="utf-8"))
    launcher_yaml = instance["run_launcher"]
    checked = process_config(EcsRunLauncher.config_type(), launcher_yaml["config"])
    assert checked.success, checked.errors
    launcher = ConfigurableClassData(
        launcher_yaml["module"], launcher_yaml["class"], yaml.safe_dump(launcher_yaml["config"])
    ).rehydrate()
    assert isinstance(launcher, EcsRunLauncher)
    # Secrets go to run tasks as valueFrom references, read from the daemon's environment.
    assert {s["name"]: s["valueFrom"] for s in launcher.secrets} == {
        "FOOTBALL_DATA_API_KEY": ecs_env["DAGSTER_ECS_API_KEY_FROM"],
        "DATABASE_URL": ecs_env["DAGSTER_ECS_DATABASE_URL_FROM"],
        "DAGSTER_PG_PASSWORD": ecs_env["DAGSTER_ECS_PG_PASSWORD_FROM"],
    }
    assert launcher.secrets_tags == []  # no secretsmanager:ListSecrets needed
    assert launcher.task_role_arn == ecs_env["DAGSTER_ECS_RUN_TASK_ROLE_ARN"]
    assert launcher.execution_role_arn == ecs_env["DAGSTER_ECS_EXECUTION_ROLE_ARN"]
    assert launcher.task_definition_dict["log_group"] == ecs_env["DAGSTER_ECS_RUN_LOG_GROUP"]
    assert not SECRET_VARIABLES & set(launcher.env_vars)

    logs_yaml = instance["compute_logs"]
    manager = ConfigurableClassData(
        logs_yaml["module"], logs_yaml["class"], yaml.safe_dump(logs_yaml["config"])
    ).rehydrate()
    assert isinstance(manager, S3ComputeLogManager)


def test_ecs_launcher_env_vars_are_set_on_the_daemon(template: Template) -> None:
    """The launcher copies each of its env_vars from the daemon's environment and fails the
    run if one is missing; every env: reference must be set there too."""
    instance = yaml.safe_load(ECS_INSTANCE.read_text(encoding="utf-8"))
    daemon = _container(template, "daemon")
    available = {v["Name"] for v in daemon["Environment"]} | {s["Name"] for s in daemon["Secrets"]}
    env_vars = set(instance["run_launcher"]["config"]["env_vars"])
    references = {value for path, value in walk(instance) if path.endswith(".env")}
    assert env_vars <= available, env_vars - available
    assert references <= available, references - available
    workspace = yaml.safe_load(ECS_WORKSPACE.read_text(encoding="utf-8"))
    assert {v for p, v in walk(workspace) if p.endswith(".env")} <= available


def test_ecs_launcher_may_run_and_pass_exactly_what_it_registers(template: Template) -> None:
    """The daemon's policy fits the launcher's config: RunTask on the prefix it registers, and
    PassRole on the two roles it names in each run's task definition."""
    env = _template_environment(template)
    statement = _passrole(template)
    passed = {json.dumps(r, sort_keys=True) for r in as_list(statement["Resource"])}
    named = {
        json.dumps(env[name], sort_keys=True)
        for name in ("DAGSTER_ECS_EXECUTION_ROLE_ARN", "DAGSTER_ECS_RUN_TASK_ROLE_ARN")
    }
    assert passed == named
    run_task = next(
        s for _, s in statements(template) if "ecs:RunTask" in as_list(s.get("Action", []))
    )
    assert "${RunTaskDefinitionPrefix}_*" in json.dumps(run_task["Resource"])
    assert env["DAGSTER_ECS_RUN_FAMILY_PREFIX"] == {"Ref": "RunTaskDefinitionPrefix"}


def test_image_carries_the_ecs_files() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "deploy/aws/dagster.yaml /opt/dagster/ecs_home/dagster.yaml" in text
    assert "deploy/aws/workspace.yaml /opt/dagster/app/workspace.ecs.yaml" in text
    assert "/opt/dagster/app/create_warehouse_database.py" in text
    template = load_template()
    assert _template_environment(template)["DAGSTER_HOME"] == "/opt/dagster/ecs_home"
    commands = [" ".join(map(str, c.get("Command", []))) for _, c in containers(template)]
    assert any("/opt/dagster/app/workspace.ecs.yaml" in c for c in commands)
    assert any("/opt/dagster/app/create_warehouse_database.py" in c for c in commands)


def test_warehouse_database_is_created_once(pg_url: str) -> None:
    """The code server task's first container, against a real PostgreSQL: creates the
    warehouse database beside Dagster's, and a second start changes nothing."""
    import uuid

    import sqlalchemy as sa

    url = sa.make_url(pg_url)
    name = f"warehouse_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": url.set(database=name).render_as_string(hide_password=False),
        "DAGSTER_PG_HOST": str(url.query.get("host") or url.host or "localhost"),
        "DAGSTER_PG_PORT": str(url.port or 5432),
        "DAGSTER_PG_USERNAME": str(url.username),
        "DAGSTER_PG_PASSWORD": str(url.password or ""),
        "DAGSTER_PG_DB": str(url.database),
    }
    script = str(AWS / "create_warehouse_database.py")
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        for expected in (f"created {name}", f"{name} exists"):
            result = subprocess.run(
                [sys.executable, script], capture_output=True, text=True, env=env, timeout=60
            )
            assert result.returncode == 0, result.stderr
            assert expected in result.stdout
        with engine.connect() as conn:
            found = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
        assert found == 1
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
