"""A clean stop loses nothing: queued, in-flight and dead-lettered messages are there after it."""

from __future__ import annotations

import json

from local_runtime.sqs import sqs_client
from tests.local_runtime.conftest import http, lines, sample_runtime, sample_settings
from tests.support import wait_for


def _folder(path):
    path.mkdir()
    return path


def _send_jobs(runtime, *jobs: dict) -> None:
    status, _, body = http("POST", runtime.api_url + "/jobs", json.dumps(jobs).encode())
    assert status == 202, body


def test_messages_queued_at_a_clean_stop_are_processed_after_the_restart(tmp_path, queue_database):
    state = tmp_path / "state"
    # Given a runtime whose queue trigger is off, so acknowledged jobs stay queued,
    paused = sample_settings(
        _folder(tmp_path / "paused"),
        Resources={"WorkerFunction": {"Events": {"Jobs": {"Properties": {"Enabled": False}}}}},
    )
    runtime = sample_runtime(state, paused, queue_database, drain_seconds=0.5).start()
    jobs = [{"id": f"kept-{n}"} for n in range(4)]
    _send_jobs(runtime, *jobs)
    # and a message already in the dead-letter queue
    client = sqs_client(runtime.sqs_url, "us-east-1")
    client.send_message(
        QueueUrl=runtime.queue_urls["JobsDeadLetterQueue"], MessageBody='{"id": "dead"}'
    )

    # When it stops cleanly
    runtime.stop()

    # Then after a restart with the trigger on, every job is processed once
    running = sample_runtime(
        state, sample_settings(tmp_path), queue_database, drain_seconds=0.5
    ).start()
    try:

        def processed() -> list[str]:
            return sorted(e["id"] for e in lines(state / "processed.jsonl"))

        assert wait_for(lambda: processed() == sorted(j["id"] for j in jobs))
        client = sqs_client(running.sqs_url, "us-east-1")
        dead = client.receive_message(QueueUrl=running.queue_urls["JobsDeadLetterQueue"])
        assert [m["Body"] for m in dead["Messages"]] == ['{"id": "dead"}']
    finally:
        running.stop()


def test_a_batch_still_running_when_the_drain_ends_is_processed_after_the_restart(
    tmp_path, queue_database
):
    state = tmp_path / "state"
    # Given an invocation that is still running when the drain's deadline passes: it
    # holds until the test releases it, and its timeout is far beyond the drain
    settings = sample_settings(
        tmp_path,
        Resources={"WorkerFunction": {"Timeout": 60}, "JobsQueue": {"VisibilityTimeout": 60}},
    )
    runtime = sample_runtime(state, settings, queue_database, drain_seconds=0.2).start()
    _send_jobs(runtime, {"id": "in-flight", "do": "hold"})
    wait_for(lambda: lines(state / "started.jsonl"))

    # When the runtime stops, it ends that invocation and makes its message visible again
    runtime.stop()
    assert lines(state / "processed.jsonl") == []

    # Then the next start processes it
    (state / "release").touch()
    running = sample_runtime(state, sample_settings(tmp_path), queue_database).start()
    try:
        entries = wait_for(lambda: lines(state / "processed.jsonl"))
        assert [e["id"] for e in entries] == ["in-flight"]
    finally:
        running.stop()
