"""Bootstrap of the notifications service: the one place its app, channels and consumer are wired."""
from __future__ import annotations

from fastapi import FastAPI

from services.common.consumer import CommandConsumer
from services.common.runner import main
from services.common.settings import Settings
from services.common.wiring import build_app, build_consumer
from services.notifications import api, db
from services.notifications.channels import ChannelPort, LogChannel, WebhookChannel
from services.notifications.domain import Channel
from services.notifications.handlers import NotificationHandlers


def create_app(settings: Settings) -> FastAPI:
    return build_app(settings, api.include, db.counters)


def create_consumer(settings: Settings) -> CommandConsumer:
    channels: dict[Channel, ChannelPort] = {Channel.LOG: LogChannel()}
    if settings.webhook_url:
        channels[Channel.WEBHOOK] = WebhookChannel(settings.webhook_url)
    return build_consumer(settings, db.inbox, db.counters, NotificationHandlers(channels).table())


if __name__ == "__main__":
    main("notifications", create_app, create_consumer)
