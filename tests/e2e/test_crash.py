"""A crash of `make dev` in the middle of a load loses no acknowledged event.

The queues are local_queue's, kept in PostgreSQL, and a send is answered only once
committed: whatever got a 202 before the kill -9 is stored after the restart
(what a store function had in flight comes back after the visibility timeout).
"""

from __future__ import annotations

import json
import threading
import uuid

from loadtest.__main__ import create_load_app, stored_times
from loadtest.driver import Driver, LoadPlan
from tests.e2e.test_make_dev import Dev
from tests.support import wait_for


def test_kill_9_during_a_load_then_a_restart_loses_no_acknowledged_event(dev_state):
    state = dev_state
    dev = Dev(state)
    dev.wait_for_line(r"^Ctrl-C stops")
    running = json.loads((state / "runtime.json").read_text())
    database_url = running["database_url"]
    run_id = "crash" + uuid.uuid4().hex[:6]
    app_id, key = create_load_app(database_url, run_id)

    # Given a load in full flow: events acknowledged and some already stored
    plan = LoadPlan(
        url=running["api_url"],
        app_id=app_id,
        api_key=key,
        duration=60.0,
        batch_size=20,
        concurrency=4,
        run_id=run_id,
    )
    driver = Driver(plan)
    load = threading.Thread(target=driver.run)
    load.start()
    wait_for(lambda: len(stored_times(database_url, app_id)) >= 200, timeout=60)

    # When make dev is killed outright, mid-load
    dev.process.kill()
    dev.process.wait(10)
    # (the load goes on until requests are refused: the kill landed mid-load)
    wait_for(lambda: any(not sample.acknowledged for sample in list(driver.samples)))
    driver.stop()
    load.join()
    acknowledged = {mid for sample in driver.samples for mid in sample.acknowledged}
    assert acknowledged
    # (its helpers see their stdin close and stop; PostgreSQL must be down before a restart)
    wait_for(lambda: not (state / "pgdata" / "postmaster.pid").exists(), timeout=60)

    # Then after a restart every acknowledged event is stored, each once
    again = Dev(state)
    try:
        again.wait_for_line(r"^Ctrl-C stops")
        # (a batch in flight at the kill comes back after the 15 s visibility timeout)
        assert wait_for(
            lambda: acknowledged <= set(stored_times(database_url, app_id)), timeout=120
        )
    finally:
        again.interrupt()
