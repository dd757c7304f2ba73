"""Which paths name a county's town (central/town_paths.py, pure)."""

from __future__ import annotations

import pytest

from central.town_paths import town_of_path


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("/api/v1/towns/north/lots", ("north", "/api/v1/lots")),
        ("/api/v1/towns/north/stream", ("north", "/api/v1/stream")),
        ("/towns/north/", ("north", "/")),
        ("/towns/north", ("north", "/")),
        ("/towns/north/dashboard/lots", ("north", "/dashboard/lots")),
        ("/api/v1/lots", None),
        ("/towns/", None),
    ],
)
def test_a_towns_paths_are_served_by_the_unprefixed_routes(
    path: str, found: tuple[str, str] | None
) -> None:
    assert town_of_path(path) == found


@pytest.mark.parametrize(
    "path",
    [
        # Accounts are the deployment's, not a town's: the balancer limits logins per
        # address on /api/v1/auth/login, and a town's spelling of it went past that limit.
        "/api/v1/towns/north/auth/login",
        "/api/v1/towns/north/auth/me",
        "/api/v1/towns/north/auth",
        # A town's pages are pages: the API and the metrics are under their own paths.
        "/towns/north/api/v1/auth/login",
        "/towns/north/api/v1/lots",
        "/towns/north/metrics",
    ],
)
def test_accounts_the_api_under_a_page_path_and_metrics_name_no_town(path: str) -> None:
    assert town_of_path(path) is None
