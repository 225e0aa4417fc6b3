"""Long backtests as jobs (POST /backtest with "trabajo": true) and /trabajos, through the real
app and real job processes: a job's stored run equals the same backtest run inline, the inline
download limit does not apply to it, and a pending job is cancelled at once."""

import pytest

from app import create_app
from config.settings import settings_from_mapping
from tests.waiting import until

BODY = {
    "symbol": "BTCUSDT", "interval": "1h", "strategy": "sma_cruce", "capital": 1000,
    "start_date": "2024-01-01", "end_date": "2024-01-31", "params": {"rapida": 5, "lenta": 20},
}  # fmt: skip


@pytest.fixture
def api(demo_exchange, tmp_path):
    """The app with a download limit below a month of hourly candles, one job at a time."""
    settings = settings_from_mapping({
        "DATA_DIR": str(tmp_path), "DEMO_PORT": str(demo_exchange.port), "JOBS_MAX": "1",
        "BACKTEST_MAX_DOWNLOAD": "100",
    })  # fmt: skip
    application = create_app(settings)
    yield application.test_client()
    application.extensions["kryptelion_jobs"].close()
    application.extensions["kryptelion"].db.close()


def _ended(api, job_id: int) -> dict:
    def ended():
        job = api.get(f"/trabajos/{job_id}").json
        return job if job["estado"] not in ("pendiente", "en_curso") else None

    return until(ended, 120, f"trabajo {job_id} ended")


def test_a_backtest_job_has_no_download_limit_and_stores_the_inline_run(api):
    refused = api.post("/backtest", json=BODY)
    assert refused.status_code == 422 and "BACKTEST_MAX_DOWNLOAD" in refused.json["error"]
    accepted = api.post("/backtest", json={**BODY, "trabajo": True})
    assert accepted.status_code == 202, accepted.json
    job_id = accepted.json["id"]
    assert accepted.json == {"id": job_id, "estado": "pendiente", "url": f"/trabajos/{job_id}"}
    job = _ended(api, job_id)
    assert job["estado"] == "terminada" and job["tipo"] == "backtest", job
    stored = api.get(job["resultado"]["url"]).json
    assert job["resultado"]["backtest"] == stored["id"]
    inline = api.post("/backtest", json=BODY)  # the candles are stored now: no download
    assert inline.status_code == 201, inline.json
    assert stored["metricas"] == inline.json["metricas"] == job["resultado"]["metricas"]
    assert stored["trades"] == inline.json["trades"] and stored["metricas"]["trades"] > 0
    listed = api.get("/trabajos").json
    assert listed["total"] == 1 and listed["trabajos"][0]["id"] == job_id


def test_a_pending_job_is_cancelled_at_once_and_an_ended_one_refuses(api):
    first = api.post("/backtest", json={**BODY, "trabajo": True}).json["id"]
    second = api.post("/backtest", json={**BODY, "trabajo": True}).json["id"]
    cancelled = api.post(f"/trabajos/{second}/cancelar")
    assert cancelled.status_code == 202 and cancelled.json["cancelacion_pedida"] is True
    assert _ended(api, first)["estado"] == "terminada"
    assert _ended(api, second)["estado"] == "cancelada"
    again = api.post(f"/trabajos/{second}/cancelar")
    assert again.status_code == 409 and again.json["detalle"] == {"estado": "cancelada"}


def test_bad_jobs_are_refused_before_they_are_stored(api):
    bad = api.post("/backtest", json={**BODY, "trabajo": True, "params": {"rapid": 3}})
    assert bad.status_code == 400 and "no parameter 'rapid'" in bad.json["error"]
    assert api.post("/backtest", json={**BODY, "trabajo": "si"}).status_code in (400, 422)
    assert api.get("/trabajos").json["total"] == 0
    missing = api.get("/trabajos/99")
    assert missing.status_code == 404 and "error" in missing.json
