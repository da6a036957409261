"""Heavy steps handed to another process or service through Dagster Pipes.

The step's asset stays in the graph (lineage, retries, metadata); its work runs elsewhere and
reports back over Pipes. Where, is configuration:

- ``subprocess`` (``local`` and ``stack``): ``PipesSubprocessClient``, a child process on the same
  machine;
- ``ecs`` (``aws``): ``PipesECSClient``, a Fargate task from the code location's task definition,
  the step's module as its command; messages back through CloudWatch Logs;
- ``lambda``: ``PipesLambdaClient``, a function whose handler calls the module's ``main``;
- ``glue``: ``PipesGlueClient``, a Glue job given the module as ``--module``; context and
  messages through S3.
"""

import sys
from typing import Any, Literal

import boto3
import dagster as dg
from dagster_aws.pipes import (
    PipesECSClient,
    PipesGlueClient,
    PipesLambdaClient,
    PipesS3ContextInjector,
    PipesS3MessageReader,
)
from pydantic import Field

from sales_analytics.alerts import precondition_failed


class OffloadResource(dg.ConfigurableResource):
    """Runs a step's module (``python -m <module>``, which opens Dagster Pipes) where configured."""

    mode: Literal["subprocess", "ecs", "lambda", "glue"] = "subprocess"
    ecs_cluster: str | None = Field(default=None, description="ECS cluster for step tasks")
    ecs_task_definition: str | None = Field(default=None, description="task definition (the code-location image)")
    ecs_container: str = Field(default="code-location", description="container whose command is the step")
    ecs_subnets: list[str] = Field(default_factory=list, description="private subnets for Fargate tasks")
    ecs_security_groups: list[str] = Field(default_factory=list)
    lambda_function: str | None = Field(default=None, description="function name or ARN")
    glue_job: str | None = Field(default=None, description="Glue job name")
    pipes_bucket: str | None = Field(default=None, description="S3 bucket for Pipes context and messages (Glue)")

    def run(self, context: dg.AssetExecutionContext, module: str,
            extras: dict[str, Any]) -> dg.PipesClientCompletedInvocation:
        if self.mode == "subprocess":
            return dg.PipesSubprocessClient().run(context=context, command=[sys.executable, "-m", module], extras=extras)
        if self.mode == "ecs":
            return PipesECSClient().run(context=context, extras=extras, run_task_params=self.ecs_run_task_params(module))
        if self.mode == "lambda":
            return PipesLambdaClient().run(context=context, function_name=self._required("lambda_function"),
                                           event={"module": module, **extras})
        s3 = boto3.client("s3")
        bucket = self._required("pipes_bucket")
        client = PipesGlueClient(context_injector=PipesS3ContextInjector(bucket=bucket, client=s3),
                                 message_reader=PipesS3MessageReader(bucket=bucket, client=s3))
        return client.run(context=context, extras=extras,
                          start_job_run_params={"JobName": self._required("glue_job"), "Arguments": {"--module": module}})

    def ecs_run_task_params(self, module: str) -> dict[str, Any]:
        return {
            "cluster": self._required("ecs_cluster"),
            "taskDefinition": self._required("ecs_task_definition"),
            "launchType": "FARGATE",
            "count": 1,
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": self.ecs_subnets,
                                                             "securityGroups": self.ecs_security_groups,
                                                             "assignPublicIp": "DISABLED"}},
            "overrides": {"containerOverrides": [{"name": self.ecs_container, "command": ["python", "-m", module]}]},
        }

    def _required(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise precondition_failed(f"offload mode {self.mode!r} needs {name} to be configured")
        return value
