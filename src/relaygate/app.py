"""create_app(settings): routes, and a lifespan that owns the database, the upstream client and the
in-memory state. Nothing here is global: two apps in one process do not share anything."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from relaygate.billing import tokenizer
from relaygate.billing.ledger import Ledger
from relaygate.bootstrap import Prepared, load_secret
from relaygate.infra.access_log import AccessLog
from relaygate.infra.http import HttpTransport, create_session
from relaygate.infra.media import MediaFetcher
from relaygate.infra.signed_media import MediaCache, SignedLinks
from relaygate.infra.snapshot import SnapshotStore
from relaygate.meter.meter import Meter
from relaygate.relay.chat import ChatRelay
from relaygate.relay.embeddings import EmbeddingsRelay
from relaygate.relay.image_stream import ImageStreams
from relaygate.relay.image_tasks import ImageTasks
from relaygate.relay.images import ImagesRelay
from relaygate.relay.midjourney import MidjourneyRelay
from relaygate.relay.midjourney_media import MidjourneyMedia
from relaygate.relay.midjourney_tasks import MidjourneyTasks
from relaygate.relay.services import Services
from relaygate.routing.health import HealthBook
from relaygate.settings import Settings
from relaygate.storage.crypto import SecretBox
from relaygate.storage.engine import create_engine
from relaygate.storage.recorder import Recorder
from relaygate.surfaces import admin, anthropic, fallback, gemini, health, images, midjourney, openai
from relaygate.surfaces.common import CHAT_RELAY, EMBEDDINGS_RELAY, ERROR_RENDERER, SERVICES
from relaygate.surfaces.rendering import renderer_for
from relaygate.tasks.engine import TaskEngine
from relaygate.tasks.poller import ChannelPoller
from relaygate.tasks.webhook import WebhookSender

log = logging.getLogger("relaygate")


def _warmed_up(services: Services, done: asyncio.Future[None]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("loading the tokenizers failed: %s", done.exception())
    services.warmed_up = True  # ready either way: a count that fails is answered per request


def create_app(settings: Settings, prepared: Prepared) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[ERROR_RENDERER] = renderer_for  # every route's error boundary asks it (surfaces/common.add_route)
    health.add_routes(app)
    openai.add_routes(app)
    images.add_routes(app)
    midjourney.add_routes(app)
    anthropic.add_routes(app)
    gemini.add_routes(app)
    admin.add_routes(app)
    fallback.add_routes(app)

    async def lifespan(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        box = SecretBox(load_secret(settings))
        ledger = Ledger()
        health_book = HealthBook(settings.circuit_failures, settings.circuit_cooldown_s)
        snapshots = SnapshotStore(engine, box, health_book, settings.snapshot_poll_s,
                                  fixed_admin_key_hash=prepared.fixed_admin_key_hash)
        recorder = Recorder(engine, ledger, refresh_every_s=settings.snapshot_poll_s)
        session = create_session()
        access_log = AccessLog(enabled=settings.access_log)
        meter = Meter(ledger, recorder, access_log, snapshots, reject_unpriced=settings.unpriced_models == "reject")
        services = Services(settings=settings, snapshots=snapshots, meter=meter, recorder=recorder,
                            http=HttpTransport(session), health=health_book, access_log=access_log,
                            box=box, engine=engine)
        await snapshots.reload()
        await recorder.refresh_now()
        app[SERVICES] = services
        media = MediaFetcher(max_bytes=settings.media_fetch_max_bytes, timeout_s=settings.media_fetch_timeout_s,
                             allow_private=settings.allow_private_media_urls)
        app[CHAT_RELAY] = ChatRelay(services, media)
        app[EMBEDDINGS_RELAY] = EmbeddingsRelay(services)
        images_relay = app[images.IMAGES_RELAY] = ImagesRelay(services)
        app[images.IMAGE_STREAMS] = ImageStreams(images_relay)
        webhooks = WebhookSender(timeout_s=settings.webhook_timeout_s, allow_private=settings.allow_private_webhooks)
        image_tasks = app[images.IMAGE_TASKS] = ImageTasks(services, images_relay)
        links = SignedLinks(box.signing_key("mj-image"), settings.mj_image_url_ttl_s)
        app[midjourney.MJ_MEDIA] = MidjourneyMedia(services, links, MediaCache(settings.mj_image_cache_bytes))
        mj_relay = app[midjourney.MJ_RELAY] = MidjourneyRelay(services, links)
        mj_tasks = app[midjourney.MJ_TASKS] = MidjourneyTasks(services, mj_relay)
        task_engine = TaskEngine(engine, (image_tasks, mj_tasks), webhooks, poll_s=settings.task_poll_s,
                                 lease_s=settings.task_lease_s, webhook_attempts=settings.webhook_attempts)
        mj_poller = ChannelPoller(engine, mj_tasks, period_s=settings.mj_poll_s)
        image_tasks.engine = mj_tasks.engine = task_engine
        warm = asyncio.get_running_loop().run_in_executor(None, tokenizer.warm_up)
        warm.add_done_callback(functools.partial(_warmed_up, services))
        snapshots.start()
        recorder.start()
        access_log.start()
        task_engine.start()
        mj_poller.start()
        try:
            yield
        finally:
            services.draining = True
            services.streams.stop()
            await mj_poller.stop()
            await task_engine.stop(settings.shutdown_timeout_s)
            await webhooks.close()
            await recorder.stop()
            await snapshots.stop()
            await access_log.stop()
            await session.close()
            await media.close()
            await engine.dispose()
            await warm

    async def on_shutdown(app: web.Application) -> None:
        # Runs before in-flight handlers are awaited: readiness turns false and new calls get 503, and
        # streams still open a little before the drain's end are ended by us (upstream/cutoff.py).
        if SERVICES in app:
            app[SERVICES].draining = True
            app[SERVICES].streams.cut_later(settings.shutdown_timeout_s)

    app.cleanup_ctx.append(lifespan)
    app.on_shutdown.append(on_shutdown)
    return app
