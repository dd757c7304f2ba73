from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from central.deps import CentralDep
from central.ops import service

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str
    database: bool
    mqtt: bool | None
    site: str


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(central: CentralDep) -> JSONResponse:
    db = service.database_ok(central)
    mqtt = central.mqtt.connected.is_set() if central.mqtt is not None else None
    ok = db and mqtt is not False
    body = Health(status="ok" if ok else "degraded", database=db, mqtt=mqtt, site=central.site.id)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(central: CentralDep) -> PlainTextResponse:
    return PlainTextResponse(
        service.metrics_text(central), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
