"""deploy/cloudformation.yaml's serverless parts (issue 21): the subscribers' DynamoDB table, exactly what
`publisher.stores.dynamodb.create_table` makes, the publish Lambda that EventBridge Scheduler invokes, the
scheduler group and role, and least-privilege IAM for each; and `cfn-lint` on the whole template."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from test_recipes import CfnLoader, refers_to

from publisher.stores import dynamodb

TEMPLATE = REPO / "deploy" / "cloudformation.yaml"
README = REPO / "deploy" / "README.md"

# The only actions granted on Resource "*": they have no resource-level permissions in IAM.
NO_RESOURCE_LEVEL = {"scheduler:ListSchedules", "ses:GetSendQuota"}
NEW_ROLES = ("PublishFunctionRole", "SchedulerRole")
NEW_POLICIES = ("SchedulesPolicy", "SubscriberTablePolicy")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506


def resource(template: dict[str, Any], name: str, kind: str) -> dict[str, Any]:
    found = template["Resources"][name]
    assert found["Type"] == kind, f"{name} is a {found['Type']}"
    return found


def as_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements, both branches of a statement chosen by !If (AWS::NoValue dropped)."""
    found = []
    for statement in document["Statement"]:
        branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        found += [b for b in branches if b != {"Ref": "AWS::NoValue"}]
    return found


def role_statements(template: dict[str, Any], name: str) -> list[dict[str, Any]]:
    role = resource(template, name, "AWS::IAM::Role")["Properties"]
    return [s for policy in role.get("Policies", []) for s in statements(policy["PolicyDocument"])]


def all_new_statements(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found = {name: role_statements(template, name) for name in NEW_ROLES}
    for name in NEW_POLICIES:
        policy = resource(template, name, "AWS::IAM::ManagedPolicy")["Properties"]
        found[name] = statements(policy["PolicyDocument"])
    return found


class RecordingDynamoDB:
    """Only records the keyword arguments `create_table` sends (no behaviour is faked: nothing here answers a
    query), so that the template can be compared with exactly what the code asks DynamoDB for."""

    def __init__(self) -> None:
        self.calls: dict[str, dict[str, Any]] = {}

    def create_table(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["create_table"] = kwargs
        return {}

    def update_time_to_live(self, **kwargs: Any) -> dict[str, Any]:
        self.calls["update_time_to_live"] = kwargs
        return {}

    def get_waiter(self, name: str) -> Any:
        assert name == "table_exists"
        return type("Waiter", (), {"wait": lambda self, **kwargs: None})()


def test_the_table_is_what_create_table_makes(template):
    client = RecordingDynamoDB()
    assert dynamodb.create_table(client, "newsletter") is True
    sent = dict(client.calls["create_table"])
    assert sent.pop("TableName") == "newsletter"  # the stack names its table (output SubscribersTableName)

    table = resource(template, "SubscribersTable", "AWS::DynamoDB::Table")
    assert table["Condition"] == "UseDynamoDB"
    properties = dict(table["Properties"])
    for key, value in sent.items():  # BillingMode, AttributeDefinitions, KeySchema, GlobalSecondaryIndexes
        assert properties.pop(key) == value, key
    assert properties.pop("TimeToLiveSpecification") == client.calls["update_time_to_live"]["TimeToLiveSpecification"]
    assert properties.pop("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}
    assert properties.pop("DeletionProtectionEnabled") is True
    assert properties == {}, f"the template sets more than create_table: {properties}"
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"

    outputs = template["Outputs"]
    assert outputs["SubscribersTableName"]["Value"] == {"Ref": "SubscribersTable"}


def test_optional_parts_default_to_what_existing_stacks_have(template):
    parameters = template["Parameters"]
    assert parameters["SubscriberStore"]["Default"] == "sqlite"
    assert set(parameters["SubscriberStore"]["AllowedValues"]) == {"sqlite", "dynamodb"}
    assert parameters["PublishFunctionCodeKey"]["Default"] == "" and parameters["LambdaCodeBucket"]["Default"] == ""
    assert parameters["PublisherSecret"]["NoEcho"] is True
    conditions = template["Conditions"]
    assert conditions["UseDynamoDB"] == {"Fn::Equals": [{"Ref": "SubscriberStore"}, "dynamodb"]}
    expected = {"SubscribersTable": "UseDynamoDB", "SubscriberTablePolicy": "UseDynamoDB",
                "ScheduleGroup": "HasPublishFunction", "SchedulerRole": "HasPublishFunction",
                "SchedulesPolicy": "HasPublishFunction", "PublishFunctionRole": "HasPublishFunction",
                "PublishFunction": "HasPublishFunction", "PublishFunctionLogGroup": "HasPublishFunction"}
    for name, condition in expected.items():
        assert template["Resources"][name]["Condition"] == condition, name
    for name, output in template["Outputs"].items():
        uses = {n for n in expected if refers_to(output["Value"], n)}
        assert {expected[n] for n in uses} <= {output.get("Condition")}, f"output {name} needs its condition"


def test_every_statement_of_the_new_roles_names_its_resources(template):
    names = set(template["Resources"]) | set(template["Parameters"])
    for owner, found in all_new_statements(template).items():
        assert found, owner
        for statement in found:
            assert statement["Effect"] == "Allow", owner
            granted = as_set(statement["Action"])
            assert not any("*" in a for a in granted), f"{owner}: a wildcard action"
            if statement["Resource"] == "*":
                assert granted <= NO_RESOURCE_LEVEL, f"{owner} {statement.get('Sid')}: {granted} on *"
                continue
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            for value in resources:
                assert any(refers_to(value, n) for n in names), f"{owner} {statement.get('Sid')}: {value}"


def test_the_scheduler_role_is_assumed_only_by_scheduler_of_this_account(template):
    role = resource(template, "SchedulerRole", "AWS::IAM::Role")["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow" and trust["Action"] == "sts:AssumeRole"
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert refers_to(trust["Condition"]["ArnLike"]["aws:SourceArn"], "ScheduleGroup"), "schedules of its group"
    (invoke,) = role_statements(template, "SchedulerRole")
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == {"Fn::GetAtt": ["PublishFunction", "Arn"]}, "the publish function only"


def test_the_publish_function_runs_the_handler_as_publish(template):
    function = resource(template, "PublishFunction", "AWS::Lambda::Function")["Properties"]
    assert function["Environment"]["Variables"]["PUBLISHER_FUNCTION"] == "publish"
    assert function["Handler"] == "handler.handler" and function["Runtime"].startswith("python3.")
    assert function["Code"] == {"S3Bucket": {"Ref": "LambdaCodeBucket"}, "S3Key": {"Ref": "PublishFunctionCodeKey"}}
    assert function["Role"] == {"Fn::GetAtt": ["PublishFunctionRole", "Arn"]}
    handler = (REPO / "deploy" / "lambda" / "handler.py").read_text(encoding="utf-8")
    drain = float(re.search(r"DRAIN_SECONDS = ([0-9.]+)", handler).group(1))  # type: ignore[union-attr]
    assert function["Timeout"] > drain
    assert 'os.environ.get("PUBLISHER_FUNCTION"' in handler and 'FUNCTION == "publish"' in handler

    trust = resource(template, "PublishFunctionRole", "AWS::IAM::Role")["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}


def test_the_publish_role_grants_deploy_send_schedules_and_the_store(template):
    found = {s["Sid"]: s for s in role_statements(template, "PublishFunctionRole")}
    publisher = {s["Sid"]: s for s in template["Resources"]["PublisherPolicy"]["Properties"]["PolicyDocument"][
        "Statement"]}
    for sid in ("ListTheSitePrefix", "ReadWriteDeleteTheSiteObjects", "InvalidateTheCdnCache", "SendAsTheNewsletter",
                "ReadTheSendingRate"):
        assert found[sid] == publisher[sid], f"{sid}: as in PublisherPolicy"
    assert not any(a.startswith("sqs:") for s in found.values() for a in as_set(s["Action"])), "publish reads no queue"
    assert found["WriteItsLogs"]["Resource"] == {"Fn::GetAtt": ["PublishFunctionLogGroup", "Arn"]}
    # The contact list without the table, the table's policy with it (a Lambda has no disk for SQLite).
    contact_list = next(s for s in template["Resources"]["PublishFunctionRole"]["Properties"]["Policies"][0][
        "PolicyDocument"]["Statement"] if "Fn::If" in s)
    assert contact_list["Fn::If"][0] == "UseDynamoDB" and contact_list["Fn::If"][1] == {"Ref": "AWS::NoValue"}
    role = template["Resources"]["PublishFunctionRole"]["Properties"]
    assert {"Fn::If": ["UseDynamoDB", {"Ref": "SubscriberTablePolicy"}, {"Ref": "AWS::NoValue"}]} in role[
        "ManagedPolicyArns"]

    schedules = template["Resources"]["SchedulesPolicy"]["Properties"]
    assert schedules["Roles"] == [{"Ref": "PublishFunctionRole"}]
    by_sid = {s["Sid"]: s for s in schedules["PolicyDocument"]["Statement"]}
    assert "ScheduleGroup" in by_sid["ManageTheSchedulesOfTheGroup"]["Resource"]["Fn::Sub"]
    assert by_sid["ReadTheGroup"]["Resource"] == {"Fn::GetAtt": ["ScheduleGroup", "Arn"]}
    pass_role = by_sid["PassTheSchedulerRole"]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    granted = {a for s in by_sid.values() for a in as_set(s["Action"])}
    assert "scheduler:CreateScheduleGroup" not in granted, "the stack makes the group"


def test_the_table_policy_is_the_item_actions_the_store_calls(template):
    source = Path(dynamodb.__file__).read_text(encoding="utf-8")
    called = set(re.findall(r'(?:_call|_conditional)\(\s*"(\w+)"', source))
    called |= set(re.findall(r"client\.(\w+)\(", source))
    # Not the store's: create_table (init-table, tests) and the client's own close(); a transaction is authorized
    # by its items' actions (the store's transactions hold Put and Delete items only, no ConditionCheck).
    called -= {"create_table", "update_time_to_live", "get_waiter", "close", "transact_write_items"}
    assert '"ConditionCheck"' not in source
    camel = {"dynamodb:" + "".join(part.title() for part in name.split("_")) for name in called}
    by_sid = {s["Sid"]: s for s in statements(
        template["Resources"]["SubscriberTablePolicy"]["Properties"]["PolicyDocument"])}
    on_table = as_set(by_sid["ReadWriteTheItems"]["Action"])
    on_index = as_set(by_sid["QueryTheIndex"]["Action"])
    assert on_table | on_index == camel, camel ^ (on_table | on_index)
    assert on_index == {"dynamodb:Query"}
    assert all("IndexName=INDEX" in line for line in source.splitlines() if '_call("query"' in line), \
        "the store queries only the index"
    assert by_sid["ReadWriteTheItems"]["Resource"] == {"Fn::GetAtt": ["SubscribersTable", "Arn"]}
    assert by_sid["QueryTheIndex"]["Resource"] == {"Fn::Sub": f"${{SubscribersTable.Arn}}/index/{dynamodb.INDEX}"}
    github = template["Resources"]["GitHubRole"]["Properties"]["ManagedPolicyArns"]
    assert {"Fn::If": ["GitHubWithDynamoDB", {"Ref": "SubscriberTablePolicy"}, {"Ref": "AWS::NoValue"}]} in github
    assert template["Outputs"]["SubscriberTablePolicyArn"]["Value"] == {"Ref": "SubscriberTablePolicy"}


def test_outputs_are_the_names_the_readme_uses(template):
    outputs = template["Outputs"]
    assert outputs["PublishFunctionArn"]["Value"] == {"Fn::GetAtt": ["PublishFunction", "Arn"]}
    assert outputs["SchedulerRoleArn"]["Value"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert outputs["ScheduleGroupName"]["Value"] == {"Ref": "ScheduleGroup"}
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Exact-time publishing with EventBridge Scheduler", 1)[1].split("\n## ", 1)[0]
    for name in ("PublishFunctionArn", "SchedulerRoleArn", "ScheduleGroupName", "SchedulesPolicyArn"):
        assert f"`{name}`" in section or f"output {name}" in section, f"deploy/README.md does not name {name}"
        assert name in outputs
    # The README's example: a stack named newsletter, its group newsletter-publisher, its function newsletter-publish.
    group = template["Resources"]["ScheduleGroup"]["Properties"]["Name"]["Fn::Sub"]
    assert group.replace("${AWS::StackName}", "newsletter") in section
    function = template["Resources"]["PublishFunction"]["Properties"]["FunctionName"]["Fn::Sub"]
    assert function.replace("${AWS::StackName}", "newsletter") in section
