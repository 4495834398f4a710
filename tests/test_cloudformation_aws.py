"""deploy/cloudformation.yaml's serverless parts (issue 21): the subscribers' DynamoDB table, exactly what
`publisher.stores.dynamodb.create_table` makes, the publish Lambda that EventBridge Scheduler invokes, the
scheduler group and role, the send queue and the worker Lambdas it feeds (the fan-out of sending), and
least-privilege IAM for each; and `cfn-lint` on the whole template (tests/test_recipes.py)."""

from __future__ import annotations

import ast
import io
import json
import re
import urllib.parse
import uuid
import zipfile
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
NEW_ROLES = ("PublishFunctionRole", "SchedulerRole", "WorkerFunctionRole")
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
                "PublishFunction": "HasPublishFunction", "PublishFunctionLogGroup": "HasPublishFunction",
                "SendQueue": "HasWorkers", "SendDeadLetterQueue": "HasWorkers", "WorkerFunction": "HasWorkers",
                "WorkerFunctionRole": "HasWorkers", "WorkerFunctionLogGroup": "HasWorkers",
                "WorkerEventSourceMapping": "HasWorkers", "SendDeadLettersAlarm": "WorkersWithAlarms"}
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
    queue_actions = {a for s in found.values() for a in as_set(s["Action"]) if a.startswith("sqs:")}
    assert queue_actions == {"sqs:SendMessage", "sqs:GetQueueAttributes"}, \
        "publish receives from no queue: it only enqueues batches for the workers (and asks if they are busy)"
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


# ---- the fan-out of sending: SendQueue -> WorkerEventSourceMapping -> WorkerFunction ----

WORKER_RESOURCES = ("SendQueue", "SendDeadLetterQueue", "WorkerFunction", "WorkerFunctionRole",
                    "WorkerFunctionLogGroup", "WorkerEventSourceMapping")


def evaluate(value: Any, parameters: dict[str, str], conditions: dict[str, Any]) -> Any:
    """The few intrinsic functions that the template's Conditions and Rules use, for given parameter values."""
    if isinstance(value, dict):
        ((function, argument),) = value.items()
        if function == "Ref":
            return parameters[argument]
        if function in ("Condition", "Fn::Condition"):
            return evaluate(conditions[argument], parameters, conditions)
        if function == "Fn::Equals":
            left, right = (evaluate(a, parameters, conditions) for a in argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not evaluate(argument[0], parameters, conditions)
        if function == "Fn::And":
            return all(evaluate(a, parameters, conditions) for a in argument)
        if function == "Fn::Or":
            return any(evaluate(a, parameters, conditions) for a in argument)
        raise AssertionError(f"unexpected {function} in a condition")
    return value


def stack_parameters(template: dict[str, Any], **values: str) -> dict[str, str]:
    found = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    return found | {"BucketName": "news-bucket", "SenderIdentity": "news.example.com"} | values


def failed_rules(template: dict[str, Any], parameters: dict[str, str]) -> set[str]:
    """The rules CloudFormation would refuse the stack's parameters with (AWS evaluates them before any change)."""
    conditions = template["Conditions"]
    failed = set()
    for name, rule in template["Rules"].items():
        if "RuleCondition" in rule and not evaluate(rule["RuleCondition"], parameters, conditions):
            continue
        if not all(evaluate(a["Assert"], parameters, conditions) for a in rule["Assertions"]):
            failed.add(name)
    return failed


def test_workers_are_optional_and_need_the_table_and_the_code_bucket(template):
    parameters = template["Parameters"]
    assert parameters["WorkerFunctionCodeKey"]["Type"] == "String" and parameters["WorkerFunctionCodeKey"][
        "Default"] == ""
    concurrency = parameters["WorkerConcurrency"]
    assert concurrency["Type"] == "Number" and concurrency["Default"] == 2
    assert (concurrency["MinValue"], concurrency["MaxValue"]) == (2, 1000), "SQS's own limits of MaximumConcurrency"
    grouped = {p for group in template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
               for p in group["Parameters"]}
    assert {"WorkerFunctionCodeKey", "WorkerConcurrency"} <= grouped

    conditions = template["Conditions"]

    def has_workers(**values: str) -> bool:
        return evaluate({"Condition": "HasWorkers"}, stack_parameters(template, **values), conditions)

    assert not has_workers(), "an existing stack gets no workers"
    assert has_workers(WorkerFunctionCodeKey="worker.zip", SubscriberStore="dynamodb", LambdaCodeBucket="code")
    assert failed_rules(template, stack_parameters(template)) == set()
    assert failed_rules(template, stack_parameters(
        template, WorkerFunctionCodeKey="worker.zip", SubscriberStore="dynamodb", LambdaCodeBucket="code")) == set()
    refused = [stack_parameters(template, WorkerFunctionCodeKey="worker.zip", LambdaCodeBucket="code"),
               stack_parameters(template, WorkerFunctionCodeKey="worker.zip", SubscriberStore="dynamodb"),
               stack_parameters(template, WorkerFunctionCodeKey="worker.zip")]
    for values in refused:
        assert failed_rules(template, values) == {"WorkersNeedDynamoDBAndCodeBucket"}, values

    for name in WORKER_RESOURCES:
        assert template["Resources"][name]["Condition"] == "HasWorkers", name
    assert conditions["WorkersWithAlarms"] == {"Fn::And": [{"Condition": "HasWorkers"},
                                                           {"Condition": "HasNotificationEmail"}]}
    assert conditions["GitHubWithWorkers"] == {"Fn::And": [{"Condition": "HasGitHub"}, {"Condition": "HasWorkers"}]}
    outputs = template["Outputs"]
    assert outputs["SendQueueUrl"] == {**outputs["SendQueueUrl"], "Condition": "HasWorkers",
                                       "Value": {"Ref": "SendQueue"}}
    assert outputs["SendDeadLetterQueueUrl"] == {**outputs["SendDeadLetterQueueUrl"], "Condition": "HasWorkers",
                                                 "Value": {"Ref": "SendDeadLetterQueue"}}


def granted(found: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(action, resource) pairs, resources as their YAML (a Ref, a GetAtt, a Sub) rendered to compare."""
    pairs = set()
    for statement in found:
        assert statement["Effect"] == "Allow" and "Condition" not in statement and "NotAction" not in statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        pairs |= {(action, repr(value)) for action in as_set(statement["Action"]) for value in resources}
    return pairs


def test_the_worker_role_grants_exactly_what_a_worker_does(template):
    role = resource(template, "WorkerFunctionRole", "AWS::IAM::Role")["Properties"]
    assert "ManagedPolicyArns" not in role, "not SubscriberTablePolicy: a worker neither puts nor deletes"
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}

    send = next(s for s in role_statements(template, "PublishFunctionRole") if s["Sid"] == "SendAsTheNewsletter")
    table = {"Fn::GetAtt": ["SubscribersTable", "Arn"]}
    queue = {"Fn::GetAtt": ["SendQueue", "Arn"]}
    logs = {"Fn::GetAtt": ["WorkerFunctionLogGroup", "Arn"]}
    expected = {(a, repr(table)) for a in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem",
                                           "dynamodb:Query")}
    expected |= {(a, repr(queue)) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                                            "sqs:GetQueueAttributes")}
    expected |= {(a, repr(logs)) for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
    expected |= granted([send])  # sending exactly as the publish function may: the same actions on the same ARNs
    expected.add(("ses:GetSendQuota", repr("*")))  # the account's MaxSendRate: the workers' shared rate
    assert as_set(send["Action"]) == {"ses:SendEmail", "ses:SendRawEmail"}
    assert granted(role_statements(template, "WorkerFunctionRole")) == expected
    # Query on the table itself: the worker never reads the index (unlike the store's QueryTheIndex).
    assert not any("/index" in pair[1] for pair in expected)


def test_the_send_queue_redrives_to_its_dead_letter_queue_after_the_workers_timeout(template):
    queue = resource(template, "SendQueue", "AWS::SQS::Queue")["Properties"]
    dead = resource(template, "SendDeadLetterQueue", "AWS::SQS::Queue")["Properties"]
    worker = resource(template, "WorkerFunction", "AWS::Lambda::Function")["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["SendDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": 5}
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"], "AWS: 6 x the function timeout for a mapping"
    assert queue["VisibilityTimeout"] <= 43200, "SQS's maximum visibility timeout"
    assert queue["SqsManagedSseEnabled"] is True and dead["SqsManagedSseEnabled"] is True
    assert dead["MessageRetentionPeriod"] == 14 * 24 * 3600
    # A batch is kept in the dead-letter queue at least as long as its first receive: AWS's advice for a DLQ.
    assert dead["MessageRetentionPeriod"] >= queue.get("MessageRetentionPeriod", 4 * 24 * 3600)

    alarm = resource(template, "SendDeadLettersAlarm", "AWS::CloudWatch::Alarm")
    assert alarm["Condition"] == "WorkersWithAlarms"
    assert template["Resources"]["AlarmTopic"]["Condition"] == "HasNotificationEmail"
    properties = alarm["Properties"]
    assert (properties["Namespace"], properties["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert properties["Dimensions"] == [{"Name": "QueueName",
                                         "Value": {"Fn::GetAtt": ["SendDeadLetterQueue", "QueueName"]}}]
    assert properties["Threshold"] == 0 and properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_worker_function_and_its_event_source_mapping(template):
    worker = resource(template, "WorkerFunction", "AWS::Lambda::Function")
    publish = resource(template, "PublishFunction", "AWS::Lambda::Function")["Properties"]
    assert worker["DependsOn"] == "WorkerFunctionLogGroup"
    function = worker["Properties"]
    assert function["Handler"] == "worker.handler" and function["Runtime"] == publish["Runtime"]
    assert (function["Timeout"], function["MemorySize"]) == (300, 1024)
    assert function["Code"] == {"S3Bucket": {"Ref": "LambdaCodeBucket"}, "S3Key": {"Ref": "WorkerFunctionCodeKey"}}
    assert function["Role"] == {"Fn::GetAtt": ["WorkerFunctionRole", "Arn"]}
    variables = function["Environment"]["Variables"]
    assert "PUBLISHER_ROOT" not in variables and "PUBLISHER_FUNCTION" not in variables
    assert variables["PUBLISHER_SECRET"] == publish["Environment"]["Variables"]["PUBLISHER_SECRET"]
    assert variables["PUBLISHER_EMAIL_QUEUE_URL"] == {"Ref": "SendQueue"}
    assert variables["PUBLISHER_SUBSCRIBERS_DYNAMODB_TABLE"] == {"Ref": "SubscribersTable"}
    log_group = resource(template, "WorkerFunctionLogGroup", "AWS::Logs::LogGroup")["Properties"]
    name = function["FunctionName"]["Fn::Sub"]
    assert log_group["LogGroupName"] == {"Fn::Sub": f"/aws/lambda/{name}"}, "the group Lambda writes to"

    mapping = resource(template, "WorkerEventSourceMapping", "AWS::Lambda::EventSourceMapping")["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SendQueue", "Arn"]}
    assert refers_to(mapping["FunctionName"], "WorkerFunction")
    assert mapping["BatchSize"] == 1, "each message already holds up to 100 recipients"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "WorkerConcurrency"}}
    assert "MaximumBatchingWindowInSeconds" not in mapping, "a batch is sent as soon as it is queued"


def policies_of(role: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """A role's inline policies with the condition each is under (None: always)."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            condition, yes, no = policy["Fn::If"]
            assert no == {"Ref": "AWS::NoValue"}
            found.append((condition, yes))
        else:
            found.append((None, policy))
    return found


def test_what_sends_may_enqueue_batches_for_the_workers(template):
    publish = template["Resources"]["PublishFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (enqueue,) = [s["Fn::If"] for s in publish["Statement"] if "Fn::If" in s and s["Fn::If"][0] == "HasWorkers"]
    assert enqueue[2] == {"Ref": "AWS::NoValue"}
    assert granted([enqueue[1]]) == {(a, repr({"Fn::GetAtt": ["SendQueue", "Arn"]}))
                                     for a in ("sqs:SendMessage", "sqs:GetQueueAttributes")}
    variables = template["Resources"]["PublishFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["PUBLISHER_EMAIL_QUEUE_URL"] == {"Fn::If": ["HasWorkers", {"Ref": "SendQueue"},
                                                                 {"Ref": "AWS::NoValue"}]}
    assert variables["PUBLISHER_EMAIL_FANOUT"] == {"Fn::If": ["HasWorkers", "sqs", {"Ref": "AWS::NoValue"}]}

    # The GitHub workflow runs `publisher publish --due`, which sends: with workers, it enqueues.
    workflow = (REPO / "deploy" / "github-actions" / "publish.yml").read_text(encoding="utf-8")
    assert "publish --due" in workflow
    github = policies_of(template["Resources"]["GitHubRole"])
    (document,) = [p["PolicyDocument"] for condition, p in github if condition == "GitHubWithWorkers"]
    assert granted(statements(document)) == {(a, repr({"Fn::GetAtt": ["SendQueue", "Arn"]}))
                                             for a in ("sqs:SendMessage", "sqs:GetQueueAttributes")}
    # Nothing else in the template may touch the send queue.
    readers = {name for name, r in template["Resources"].items()
               if r["Type"] in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy") and refers_to(r, "SendQueue")}
    assert readers == {"PublishFunctionRole", "GitHubRole", "WorkerFunctionRole"}


# ---- the worker resources created by CloudFormation on the moto server ----

# moto's CloudFormation cannot create the whole template (no CloudFront distribution, no SES configuration set, no
# CloudWatch alarm): the stack below is the template's worker resources with what they name, unchanged, and its
# Parameters, Rules and Conditions. The SES configuration set becomes a parameter of the same name (the role only
# puts its name in an ARN), and SendDeadLettersAlarm is left out (moto skips AWS::CloudWatch::Alarm: it is checked
# above, in the template). moto's Lambda creates the function and the SQS event source mapping but does not run the
# code here (no Docker), so what a worker does with a message is tested with deploy/lambda/worker.py itself.
MOTO_RESOURCES = (*WORKER_RESOURCES, "SubscribersTable", "AlarmTopic")


def worker_stack(template: dict[str, Any]) -> str:
    stack = json.loads(json.dumps(template))  # a copy
    stack["Resources"] = {name: r for name, r in stack["Resources"].items() if name in MOTO_RESOURCES}
    stack["Parameters"]["ConfigurationSet"] = {"Type": "String", "Default": "newsletter"}
    stack["Outputs"] = {name: o for name, o in stack["Outputs"].items()
                        if any(refers_to(o["Value"], r) for r in stack["Resources"])}
    for name, found in stack["Resources"].items():  # nothing names a resource the stack does not have
        for other in template["Resources"]:
            known = other in stack["Resources"] or other in stack["Parameters"]
            assert known or not refers_to(found, other), f"{name} names {other}"
    return json.dumps(stack)


def create_stack(body: str, **values: str) -> tuple[str, dict[str, str], dict[str, str]]:
    import boto3

    cloudformation = boto3.client("cloudformation")
    name = f"news-{uuid.uuid4().hex[:8]}"
    values = {"BucketName": "news-bucket", "SenderIdentity": "news.example.com", **values}
    cloudformation.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()])
    (stack,) = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return name, resources, outputs


@pytest.fixture
def stacks(aws):  # type: ignore[no-untyped-def]
    """The stacks a test makes, deleted after it: moto's backends are shared by the whole test process, and the
    /moto-api/data.json that other tests read SES's sent mail from cannot serialize a stack's Lambda resources."""
    import urllib.request

    import boto3

    made: list[str] = []
    yield made
    from moto.core.model_instances import model_data

    cloudformation = boto3.client("cloudformation")
    for name in made:
        cloudformation.delete_stack(StackName=name)
    # moto tracks every model it ever made for that dashboard, deleted or not: its Lambda models ask a Docker
    # engine for their state when listed, and none runs here. The server runs in this test process.
    for model in model_data.get("awslambda", {}).values():
        model.instances_tracked = []  # type: ignore[attr-defined]
    with urllib.request.urlopen(f"{aws}/moto-api/data.json") as answer:  # readable again
        assert answer.status == 200


def test_the_stack_creates_the_send_queue_and_the_workers_on_moto(template, stacks):
    import boto3

    code_bucket = f"code-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=code_bucket)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zip_file:  # only for the zip's presence: moto does not run it
        zip_file.writestr("worker.py", "def handler(event, context):\n    return {'batchItemFailures': []}\n")
    boto3.client("s3").put_object(Bucket=code_bucket, Key="worker.zip", Body=archive.getvalue())

    body = worker_stack(template)
    first, without, outputs = create_stack(body)
    stacks.append(first)
    assert not set(without) & set(MOTO_RESOURCES), "no worker resources without WorkerFunctionCodeKey"
    assert "SendQueueUrl" not in outputs

    name, resources, outputs = create_stack(
        body, SubscriberStore="dynamodb", LambdaCodeBucket=code_bucket, WorkerFunctionCodeKey="worker.zip",
        WorkerConcurrency="20", PublisherSecret="s3cret", NotificationEmail="ops@example.com")
    stacks.append(name)
    assert set(MOTO_RESOURCES) <= set(resources)
    sqs = boto3.client("sqs")
    queue_url, dead_url = outputs["SendQueueUrl"], outputs["SendDeadLetterQueueUrl"]
    assert (resources["SendQueue"], resources["SendDeadLetterQueue"]) == (queue_url, dead_url)
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dead = sqs.get_queue_attributes(QueueUrl=dead_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dead["QueueArn"], "maxReceiveCount": 5}
    assert queue["SqsManagedSseEnabled"] == dead["SqsManagedSseEnabled"] == "true"
    assert dead["MessageRetentionPeriod"] == "1209600"

    awslambda = boto3.client("lambda")
    function = awslambda.get_function_configuration(FunctionName=resources["WorkerFunction"])
    assert function["FunctionName"] == f"{name}-worker" and function["Handler"] == "worker.handler"
    assert int(queue["VisibilityTimeout"]) >= 6 * function["Timeout"]
    table = boto3.client("dynamodb").describe_table(TableName=resources["SubscribersTable"])["Table"]
    assert function["Environment"]["Variables"] == {
        "PUBLISHER_EMAIL_QUEUE_URL": queue_url, "PUBLISHER_SECRET": "s3cret",
        "PUBLISHER_SUBSCRIBERS_DYNAMODB_TABLE": table["TableName"]}
    (mapping,) = awslambda.list_event_source_mappings(FunctionName=function["FunctionName"])["EventSourceMappings"]
    assert mapping["EventSourceArn"] == queue["QueueArn"] and mapping["FunctionArn"] == function["FunctionArn"]
    assert mapping["BatchSize"] == 1 and mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 20}

    # The role's policy, resolved: exactly these actions on exactly the stack's queue, table and log group.
    iam = boto3.client("iam")
    role = function["Role"].rsplit("/", 1)[1]
    assert role == resources["WorkerFunctionRole"]
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (policy,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
    if isinstance(document, str):
        # moto keeps the inline policy of a role made by CloudFormation as the Python repr of the resolved
        # document (not JSON), which botocore cannot decode: read it back as the literal it is.
        document = ast.literal_eval(urllib.parse.unquote(document))
    pairs = {(action, resource) for s in document["Statement"] for action in as_set(s["Action"])
             for resource in as_set(s["Resource"])}
    ses = "arn:aws:ses:us-east-1:123456789012:"
    expected = {(a, queue["QueueArn"]) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage",
                                                 "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")}
    expected |= {(a, table["TableArn"]) for a in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchGetItem",
                                                  "dynamodb:Query")}
    expected |= {(a, r) for a in ("ses:SendEmail", "ses:SendRawEmail") for r in (
        f"{ses}identity/news.example.com", f"{ses}configuration-set/newsletter", f"{ses}contact-list/newsletter")}
    expected.add(("ses:GetSendQuota", "*"))
    logs = {r for a, r in pairs if a.startswith("logs:")}
    assert len(logs) == 1 and logs.pop().split(":log-group:", 1)[1].removesuffix(":*") == f"/aws/lambda/{name}-worker"
    assert {(a, r) for a, r in pairs if not a.startswith("logs:")} == expected
