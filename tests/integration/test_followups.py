"""An e-mail an SMTP outage kept from a run is sent by the next run (issue 19 item 2): the
history row says it is pending, and the next run of any job sends it as it would have been."""

from __future__ import annotations

from tests.conftest import free_port, reload_settings
from tests.factories import history_rows
from tests.toy.toy_job import toy_job


async def test_an_email_lost_to_an_smtp_outage_goes_out_with_the_next_run(app_env, smtp_sink, monkeypatch):
    url = app_env["DATABASE_URL"]
    monkeypatch.setenv("NOTIFY_POLICY", "always")
    monkeypatch.setenv("SMTP_PORT", str(free_port()))  # nothing listens: SMTP is down
    reload_settings()
    first = await toy_job(greeting="first")
    assert first.status == "SUCCESS"  # a lost e-mail does not undo the run
    [row] = history_rows(url)
    assert row.email_pending and not row.artifact_pending
    assert not [m for m in smtp_sink.messages if "toy_job" in m["Subject"]]  # type: ignore[attr-defined]

    monkeypatch.setenv("SMTP_PORT", str(smtp_sink.port))  # type: ignore[attr-defined]
    reload_settings()
    await toy_job(greeting="second")
    mails = [m for m in smtp_sink.messages if "toy_job" in m["Subject"]]  # type: ignore[attr-defined]
    assert len(mails) == 2, [m["Subject"] for m in mails]
    runs = history_rows(url)
    sent = sorted(line.split()[-1] for m in mails for line in m.get_content().splitlines()
                  if line.startswith("Flow run:"))
    assert sent == sorted(r.flow_run_id for r in runs), sent  # the first run's own e-mail, and the second's
    assert not [r.id for r in runs if r.email_pending or r.artifact_pending]

    await toy_job(greeting="third")  # sent once: nothing left for the run after
    assert len([m for m in smtp_sink.messages if "toy_job" in m["Subject"]]) == 3  # type: ignore[attr-defined]
