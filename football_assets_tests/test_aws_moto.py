"""deploy/aws/template.yaml deployed into moto's standalone server (real boto3 over HTTP).

moto's CloudFormation creates what it has a model for and skips the other resource types
with a warning (and refuses a template whose Fn::GetAtt points at a skipped one). Those are
found with moto's own lookup (`resource_class_from_type`), created through their services'
APIs from the template's own properties, and their references replaced by what those calls
returned, so the stack that moto deploys is the template's. `MOTO_WITHOUT_CLOUDFORMATION`
pins the list, so a moto upgrade that adds one shows up here.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from football_assets_tests.test_aws_template import (
    SECRET_VARIABLES,
    as_list,
    load_template,
)
from football_assets_tests.test_output import aws_env, moto_server

pytestmark = pytest.mark.slow

STACK = "football"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/football-assets:0123456789ab"
API_KEY = "moto-api-key-0123456789abcdef"
MOTO_WITHOUT_CLOUDFORMATION = {
    "AWS::CloudWatch::Alarm",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::Logs::MetricFilter",
    "AWS::S3::BucketPolicy",
    "AWS::SecretsManager::Secret",
    "AWS::ServiceDiscovery::PrivateDnsNamespace",
    "AWS::ServiceDiscovery::Service",
}


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The moto server, and the environment a process needs to use it as AWS."""
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        env = aws_env(url)
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def client(service: str) -> Any:
    import boto3

    return boto3.session.Session().client(service)


# ---- the template, with moto's gaps filled through the services' own APIs ------------------


def _replace(node: Any, names: dict[str, dict[str, str]]) -> Any:
    """Refs and GetAtts to the resources in `names` become the values their APIs returned."""
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in names:
            return names[node["Ref"]]["Ref"]
        if set(node) == {"Fn::GetAtt"} and node["Fn::GetAtt"][0] in names:
            return names[node["Fn::GetAtt"][0]][node["Fn::GetAtt"][1]]
        if set(node) == {"Fn::Sub"}:
            value = node["Fn::Sub"]
            text, variables = (value, {}) if isinstance(value, str) else value

            def sub(match: re.Match[str]) -> str:
                name, _, attr = match.group(1).partition(".")
                return names[name][attr or "Ref"] if name in names else match.group(0)

            text = re.sub(r"\$\{([A-Za-z0-9.]+)\}", sub, text)
            variables = _replace(variables, names)
            return {"Fn::Sub": [text, variables] if variables else text}
        return {key: _replace(value, names) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace(value, names) for value in node]
    return node


def _generated_secret(properties: dict[str, Any]) -> str:
    spec = properties["GenerateSecretString"]
    password = client("secretsmanager").get_random_password(
        PasswordLength=spec["PasswordLength"], ExcludePunctuation=spec["ExcludePunctuation"]
    )["RandomPassword"]
    return json.dumps(
        {**json.loads(spec["SecretStringTemplate"]), spec["GenerateStringKey"]: password}
    )


def deploy(parameters: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Create the stack; returns (the template as deployed, {logical id: type} made by API)."""
    from moto.cloudformation.parsing import resource_class_from_type

    template = load_template()
    by_api = {
        name: r["Type"]
        for name, r in template["Resources"].items()
        if resource_class_from_type(r["Type"]) is None
    }
    assert set(by_api.values()) == MOTO_WITHOUT_CLOUDFORMATION

    # Before the stack: what its resources reference.
    made: dict[str, dict[str, str]] = {}
    secrets = client("secretsmanager")
    for name, kind in by_api.items():
        props = template["Resources"][name]["Properties"]
        if kind == "AWS::SecretsManager::Secret":
            # The URL secret's value needs the database endpoint; it is set after the stack.
            value = _generated_secret(props) if "GenerateSecretString" in props else "pending"
            arn = secrets.create_secret(Name=f"{STACK}-{name}", SecretString=value)["ARN"]
            made[name] = {"Ref": arn, "Id": arn}
    discovery = client("servicediscovery")
    namespace = next(n for n, k in by_api.items() if k.endswith("PrivateDnsNamespace"))
    operation = discovery.create_private_dns_namespace(
        Name=f"{STACK}.football.internal", Vpc=parameters["VpcId"]
    )["OperationId"]
    namespace_id = discovery.get_operation(OperationId=operation)["Operation"]["Targets"][
        "NAMESPACE"
    ]
    made[namespace] = {"Ref": namespace_id, "Id": namespace_id}
    service = next(n for n, k in by_api.items() if k == "AWS::ServiceDiscovery::Service")
    props = template["Resources"][service]["Properties"]
    created = discovery.create_service(
        Name=props["Name"], NamespaceId=namespace_id, DnsConfig=props["DnsConfig"]
    )["Service"]
    made[service] = {"Ref": created["Id"], "Arn": created["Arn"], "Id": created["Id"]}

    deployed = _replace(template, made)
    for name in by_api:
        deployed["Resources"].pop(name)
    cloudformation = client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(deployed),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }

    # After the stack: what references its resources.
    original = load_template()["Resources"]
    db = client("rds").describe_db_instances(DBInstanceIdentifier=physical["Database"])
    endpoint = db["DBInstances"][0]["Endpoint"]
    master = json.loads(
        secrets.get_secret_value(SecretId=made["DatabaseSecret"]["Ref"])["SecretString"]
    )
    secrets.put_secret_value(
        SecretId=made["DatabaseUrlSecret"]["Ref"],
        SecretString=f"postgresql+psycopg://{master['username']}:{master['password']}"
        f"@{endpoint['Address']}:{endpoint['Port']}/football?sslmode=require",
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for name, kind in by_api.items():
        props = _replace(original[name]["Properties"], made)
        if kind == "AWS::Logs::MetricFilter":
            transform = props["MetricTransformations"][0]
            client("logs").put_metric_filter(
                logGroupName=physical[props["LogGroupName"]["Ref"]],
                filterName=name,
                filterPattern=props["FilterPattern"],
                metricTransformations=[
                    {
                        "metricName": f"{STACK}-FailedRuns",
                        "metricNamespace": transform["MetricNamespace"],
                        "metricValue": transform["MetricValue"],
                        "defaultValue": float(transform["DefaultValue"]),
                    }
                ],
            )
        elif kind == "AWS::CloudWatch::Alarm":
            client("cloudwatch").put_metric_alarm(
                AlarmName=f"{STACK}-{name}",
                Namespace=props["Namespace"],
                MetricName=f"{STACK}-FailedRuns",
                Statistic=props["Statistic"],
                Period=props["Period"],
                EvaluationPeriods=props["EvaluationPeriods"],
                Threshold=float(props["Threshold"]),
                ComparisonOperator=props["ComparisonOperator"],
                TreatMissingData=props["TreatMissingData"],
                AlarmActions=[physical[props["AlarmActions"][0]["Ref"]]],
            )
        elif kind == "AWS::S3::BucketPolicy":
            bucket = physical[props["Bucket"]["Ref"]]
            policy = json.loads(
                json.dumps(props["PolicyDocument"])
                .replace('{"Fn::GetAtt": ["SummaryBucket", "Arn"]}', f'"arn:aws:s3:::{bucket}"')
                .replace('{"Fn::Sub": "${SummaryBucket.Arn}/*"}', f'"arn:aws:s3:::{bucket}/*"')
            )
            client("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        elif kind == "AWS::EC2::SecurityGroupEgress":
            rule: dict[str, Any] = {
                "IpProtocol": props["IpProtocol"],
                "FromPort": props["FromPort"],
                "ToPort": props["ToPort"],
                "UserIdGroupPairs": [
                    {"GroupId": physical[props["DestinationSecurityGroupId"]["Ref"]]}
                ],
            }
            client("ec2").authorize_security_group_egress(
                GroupId=physical[props["GroupId"]["Ref"]], IpPermissions=[rule]
            )
    return {"physical": physical, "outputs": outputs, "made": made}, by_api


@pytest.fixture(scope="module")
def stack(moto: dict[str, str]) -> dict[str, Any]:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"us-east-1{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in ((1, "a"), (2, "b"))
    ]
    # The operator's step before the first deploy (docs/deploy-aws.md): key as SecureString.
    client("ssm").put_parameter(Name="/football-assets/api-key", Value=API_KEY, Type="SecureString")
    deployed, by_api = deploy(
        {
            "ImageUri": IMAGE,
            "VpcId": vpc,
            "SubnetIds": ",".join(subnets),
            "LoadBalancerSubnetIds": ",".join(subnets),
        }
    )
    return {**deployed, "by_api": by_api}


# ---- the tests ------------------------------------------------------------------------------


def test_the_stack_deploys(stack: dict[str, Any]) -> None:
    template = load_template()
    by_cloudformation = set(template["Resources"]) - set(stack["by_api"])
    assert set(stack["physical"]) == by_cloudformation
    assert {"WebserverUrl", "SummaryUri", "RunsLogGroupName"} <= set(stack["outputs"])
    physical = stack["physical"]

    ecs = client("ecs")
    cluster = physical["Cluster"]
    services = ecs.describe_services(
        cluster=cluster,
        services=[physical[n] for n in ("CodeServerService", "WebserverService", "DaemonService")],
    )["services"]
    assert len(services) == 3 and {s["desiredCount"] for s in services} == {1}
    # moto's ECS::Service model drops NetworkConfiguration (describe_services returns {}):
    # the default AssignPublicIp=DISABLED is checked on the template (test_aws_template.py).

    for name in ("CodeServerTaskDefinition", "WebserverTaskDefinition", "DaemonTaskDefinition"):
        task = ecs.describe_task_definition(taskDefinition=physical[name])["taskDefinition"]
        # moto's CloudFormation keeps the containers, not RequiresCompatibilities/Cpu/Memory.
        for container in task["containerDefinitions"]:
            environment = {v["name"] for v in container.get("environment", [])}
            assert not environment & SECRET_VARIABLES, container["name"]
            assert {s["name"] for s in container["secrets"]} == SECRET_VARIABLES
            assert container["logConfiguration"]["logDriver"] == "awslogs"

    [db] = client("rds").describe_db_instances(DBInstanceIdentifier=physical["Database"])[
        "DBInstances"
    ]
    # moto's CloudFormation RDS model ignores DeletionProtection (the template's default is
    # checked by test_aws_template.py); encryption, backups and privacy it keeps.
    assert db["StorageEncrypted"] and db["Endpoint"]["Port"] == 5432
    assert db["BackupRetentionPeriod"] >= 1 and not db["PubliclyAccessible"]
    assert db["DBName"] == "dagster"

    s3 = client("s3")
    bucket = physical["SummaryBucket"]
    # moto's CloudFormation S3 model applies BucketEncryption and Tags only: versioning, the
    # public access block, ownership and lifecycle are checked on the template instead.
    assert s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    assert "aws:SecureTransport" in s3.get_bucket_policy(Bucket=bucket)["Policy"]

    groups = client("logs").describe_log_groups(logGroupNamePrefix=f"/football-assets/{STACK}/")
    assert {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]} == {
        f"/football-assets/{STACK}/runs": 30,
        f"/football-assets/{STACK}/services": 30,
    }
    filters = client("logs").describe_metric_filters(logGroupName=f"/football-assets/{STACK}/runs")[
        "metricFilters"
    ]
    assert "PIPELINE_FAILURE" in filters[0]["filterPattern"]
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=STACK)["MetricAlarms"]
    assert alarms and alarms[0]["MetricName"] == f"{STACK}-FailedRuns"

    [lb] = client("elbv2").describe_load_balancers(
        LoadBalancerArns=[physical["WebserverLoadBalancer"]]
    )["LoadBalancers"]
    assert lb["Scheme"] == "internal"

    iam = client("iam")
    daemon_role = physical["DaemonTaskRole"]
    document = policy_document(iam.get_role_policy(RoleName=daemon_role, PolicyName="launch-runs"))
    passrole = next(s for s in document["Statement"] if s.get("Sid") == "PassOnlyTheRunRoles")
    roles = {
        iam.get_role(RoleName=physical[n])["Role"]["Arn"] for n in ("ExecutionRole", "RunTaskRole")
    }
    assert set(as_list(passrole["Resource"])) == roles


def policy_document(response: dict[str, Any]) -> dict[str, Any]:
    """An inline policy as a dict: moto 5 answers with the Python repr of the document."""
    document = response["PolicyDocument"]
    if isinstance(document, str):
        try:
            return dict(json.loads(document))
        except json.JSONDecodeError:
            return dict(ast.literal_eval(document))
    return dict(document)


def resolve_like_ecs(value_from: str) -> str:
    """What the ECS agent does with a container secret's valueFrom, with the execution role."""
    if ":ssm:" in value_from:
        found = client("ssm").get_parameters(Names=[value_from], WithDecryption=True)
        assert not found["InvalidParameters"], found
        return str(found["Parameters"][0]["Value"])
    # arn:aws:secretsmanager:region:account:secret:name[:json-key:version-stage:version-id]
    parts = value_from.split(":")
    secret_id, json_key = ":".join(parts[:7]), (parts[7] if len(parts) > 7 else "")
    text = client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    return str(json.loads(text)[json_key]) if json_key else str(text)


def test_containers_get_the_api_key_from_the_parameter_store(stack: dict[str, Any]) -> None:
    physical = stack["physical"]
    task = client("ecs").describe_task_definition(taskDefinition=physical["DaemonTaskDefinition"])[
        "taskDefinition"
    ]
    [daemon] = task["containerDefinitions"]
    secrets = {s["name"]: s["valueFrom"] for s in daemon["secrets"]}
    assert resolve_like_ecs(secrets["FOOTBALL_DATA_API_KEY"]) == API_KEY
    password = resolve_like_ecs(secrets["DAGSTER_PG_PASSWORD"])
    assert len(password) == 40 and password.isalnum()
    assert f":{password}@" in resolve_like_ecs(secrets["DATABASE_URL"])

    # The parameter is a SecureString, and the execution role may read exactly it.
    parameter = client("ssm").get_parameter(Name="/football-assets/api-key")["Parameter"]
    assert parameter["Type"] == "SecureString"
    role = policy_document(
        client("iam").get_role_policy(
            RoleName=physical["ExecutionRole"], PolicyName="read-the-three-secrets"
        )
    )
    readable = {r for s in role["Statement"] for r in as_list(s["Resource"])}
    assert secrets["FOOTBALL_DATA_API_KEY"] in readable
    # The daemon hands run tasks the same references (deploy/aws/dagster.yaml reads these).
    environment = {v["name"]: v["value"] for v in daemon["environment"]}
    assert environment["DAGSTER_ECS_API_KEY_FROM"] == secrets["FOOTBALL_DATA_API_KEY"]
    assert environment["DAGSTER_ECS_DATABASE_URL_FROM"] == secrets["DATABASE_URL"]
    assert environment["DAGSTER_ECS_PG_PASSWORD_FROM"] == secrets["DAGSTER_PG_PASSWORD"]


def test_refresh_writes_summary_to_s3(moto: dict[str, str], tmp_path: Path) -> None:
    """A real `football-assets refresh` (offline snapshot, embedded PostgreSQL) writing the
    summary to s3://bucket/prefix on the moto server."""
    bucket = f"summary-{uuid.uuid4().hex[:12]}"
    client("s3").create_bucket(Bucket=bucket)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FOOTBALL_", "DAGSTER_", "AWS_")) and k != "DATABASE_URL"
    }
    env.update(moto)
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_CONFIG_FILE": os.devnull,
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            "FOOTBALL_EMBEDDED_PGDATA": str(tmp_path / "pgdata"),
            "FOOTBALL_OUTPUT_DIR": f"s3://{bucket}/reports/daily",
        }
    )
    (tmp_path / "dagster_home").mkdir()
    cli = str(Path(sys.executable).parent / "football-assets")
    try:
        result = subprocess.run(
            [cli, "refresh"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        body = client("s3").get_object(Bucket=bucket, Key="reports/daily/summary.csv")["Body"]
        rows = list(csv.DictReader(io.StringIO(body.read().decode("utf-8"))))
        assert len(rows) == 13
        assert f"s3://{bucket}/reports/daily/summary.csv" in result.stdout
        assert not (tmp_path / "s3:").exists()  # not a local folder named after the URL
    finally:
        subprocess.run([cli, "db", "stop"], cwd=tmp_path, env=env, timeout=120, check=False)
