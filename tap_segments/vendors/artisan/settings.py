"""Artisan's settings, declared once (see ``tap_segments.settings``)."""

from __future__ import annotations

from dataclasses import dataclass

from singer_sdk import typing as th

from tap_segments.settings import SettingsGroup, id_list, secret, setting


@dataclass(frozen=True)
class ArtisanSettings(SettingsGroup):
    base_url: str = setting(
        "artisan_base_url",
        th.StringType,
        title="Artisan base URL",
        description="Artisan API base URL; the keys are sent only to this origin.",
        default="https://artisantools.com",
    )
    public_api_key: str = secret(
        "artisan_public_api_key",
        "Artisan public API key",
        "Artisan public API key (header `public-api-key`).",
    )
    secret_api_key: str = secret(
        "artisan_secret_api_key",
        "Artisan secret API key",
        'Artisan secret API key (header `Authorization: Token token="..."`).',
    )
    app_ids: tuple[str, ...] = id_list(
        "artisan_app_ids",
        "Artisan app IDs",
        "Limit to these Artisan apps; when set, the apps list is not needed by the other "
        "Artisan streams (one partition per app in partitioned runs).",
    )
    profile_ids: tuple[str, ...] = id_list(
        "artisan_profile_ids",
        "Artisan profile IDs",
        "Artisan (device) IDs whose profiles are fetched directly.",
    )
    shared_user_ids: tuple[str, ...] = id_list(
        "artisan_shared_user_ids",
        "Artisan Shared User IDs",
        "Shared User IDs whose profiles are fetched directly (`source=custom`).",
    )
    callback_url: str | None = setting(
        "artisan_callback_url",
        th.StringType,
        title="Artisan callback URL",
        description=(
            "Optional `callbackUrl` passed to Artisan export requests. Never required: the "
            "tap polls the job."
        ),
    )
