"""Small helpers shared by the tests."""

import dagster as dg


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message with its chain of causes, for asserting on what a user sees."""
    parts = []
    for event in result.get_step_failure_events():
        error = event.event_specific_data.error
        while error is not None:
            parts.append(error.message)
            error = error.cause
    return "\n".join(parts)
