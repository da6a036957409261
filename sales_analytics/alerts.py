"""When a step or a run fails: retries with backoff and jitter, then an alert.

Every job's steps talk to S3, PostgreSQL or DynamoDB. They retry with exponential backoff and
jitter, so a server that is briefly away costs a delay, not a failed run, and a fleet of retrying
steps does not come back in lockstep. A precondition no retry can fix (no champion model yet,
nothing curated) raises ``precondition_failed(...)``, which is not retried. A run that still
fails raises an alert through ``AlertNotifier``: always the log; also a webhook (JSON POST, e.g.
a chat or incident tool) and an SNS topic when configured.
"""

import json
import logging
import os
import re
import urllib.request
from dataclasses import asdict, dataclass

import boto3
import dagster as dg
from pydantic import Field

RETRY_DELAY_ENV = "SALES_ANALYTICS_RETRY_DELAY_SECONDS"
DEFAULT_RETRY_DELAY = 2.0


def network_retry(delay: float) -> dg.RetryPolicy:
    """Retries ``delay``, 3x and 7x ``delay`` after the first, second and third failure, each ±
    ``delay``: with the default 2 s, 2, 6 and 14 s, at least 16 s in all, which rides out a restart
    of any of the three servers."""
    return dg.RetryPolicy(max_retries=3, delay=delay, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


# Read once, when the code location loads (a deployment's setting; the tests' shorter one).
NETWORK_RETRY = network_retry(float(os.environ.get(RETRY_DELAY_ENV, DEFAULT_RETRY_DELAY)))

SECRET_NAME = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|WEBHOOK)", re.IGNORECASE)
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
MAX_MESSAGE = 2000
SNS_SUBJECT_LIMIT = 100


def precondition_failed(message: str) -> dg.Failure:
    """A step's input is not there yet (no champion, nothing curated): retrying cannot help."""
    return dg.Failure(message, allow_retries=False)


def redacted(text: str) -> str:
    """``text`` with URL passwords and the values of secret-named environment variables masked:
    an error message may quote a connection string, and an alert leaves the platform."""
    text = URL_PASSWORD.sub(r"\1***@", text)
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= 8:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Alert:
    job: str
    run_id: str
    partition: str | None
    error: str
    run_url: str | None
    outcome: str = "failed"  # or what else a run found that a person must hear about

    @property
    def subject(self) -> str:
        where = f" [{self.partition}]" if self.partition else ""
        return f"sales_analytics: run of {self.job}{where} {self.outcome}"


def alert_for(context: dg.RunFailureSensorContext) -> Alert:
    run = context.dagster_run
    steps = context.get_step_failure_events()
    errors = [f"{e.step_key}: {e.event_specific_data.error.message.strip()}" for e in steps
              if e.event_specific_data is not None and e.event_specific_data.error is not None]
    error = "\n".join(errors) or context.failure_event.message or "the run failed before any step"
    base = os.environ.get("SALES_ANALYTICS_DAGSTER_URL")
    return Alert(job=run.job_name, run_id=run.run_id, partition=run.tags.get("dagster/partition"),
                 error=redacted(error)[:MAX_MESSAGE], run_url=f"{base.rstrip('/')}/runs/{run.run_id}" if base else None)


class AlertNotifier(dg.ConfigurableResource):
    """Where run-failure alerts go. The log always; the webhook and SNS topic when set."""

    webhook_url: str | None = Field(default=None, description="POSTed a JSON alert; a secret (dg.EnvVar)")
    sns_topic_arn: str | None = Field(default=None, description="SNS topic published to (aws profile)")
    region_name: str | None = None
    timeout_seconds: float = 10.0

    def send(self, alert: Alert, log: logging.Logger) -> list[str]:
        """Delivers to every configured channel; returns those that took it. A channel that fails is
        logged and the others still get the alert."""
        log.error(f"{alert.subject}: {alert.error}")
        delivered = ["log"]
        for channel, deliver in (("webhook", self._post if self.webhook_url else None),
                                 ("sns", self._publish if self.sns_topic_arn else None)):
            if deliver is None:
                continue
            try:
                deliver(alert)
                delivered.append(channel)
            except Exception as err:  # noqa: BLE001 - one channel's outage must not silence the others
                log.error(f"alert for run {alert.run_id} not delivered to {channel}: {type(err).__name__}: {redacted(str(err))}")
        return delivered

    def _post(self, alert: Alert) -> None:
        if not self.webhook_url.startswith(("https://", "http://")):  # urlopen would also read file:// and ftp://
            raise ValueError("the alert webhook must be an http(s) URL")
        request = urllib.request.Request(self.webhook_url, data=json.dumps(asdict(alert) | {"subject": alert.subject}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
            response.read()

    def _publish(self, alert: Alert) -> None:
        sns = boto3.client("sns", region_name=self.region_name)
        sns.publish(TopicArn=self.sns_topic_arn, Subject=alert.subject[:SNS_SUBJECT_LIMIT],
                    Message=json.dumps(asdict(alert), indent=2))
