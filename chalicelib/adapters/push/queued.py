"""Pushes off the projector's path: the projector only enqueues; a sender per connection
delivers that connection's messages in order. A client that falls behind (its queue full) or
can't take a message within the management API's bounded time is dropped, so one slow client
never delays the read model or the other clients. Before each send the sender checks that the
connection still listens to the event's topics: a subscription narrowed (or a connection gone)
after the event was queued gets nothing it no longer asked for."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from typing import Any

from chalicelib.adapters.push.pusher import Pusher, within_frame_limit
from chalicelib.adapters.push.subscriptions import topics_of

logger = logging.getLogger(__name__)

# What a connection's queue holds: the topics the event was published to, and its frame.
Queued = tuple[list[str], Mapping[str, Any]]


class QueuedPusher:
    def __init__(self, pusher: Pusher, *, queue_size: int = 256, idle_s: float = 30.0) -> None:
        self.pusher = pusher
        self.queue_size = queue_size
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._queues: dict[str, queue.Queue[Queued]] = {}
        self.dropped: list[str] = []

    def push_event(self, event: Mapping[str, Any]) -> int:
        """Enqueue the event for every subscribed connection, never waiting; how many took it."""
        topics = topics_of(event)
        try:
            listeners = self.pusher._subscriptions.listeners(topics)
        except Exception:
            logger.exception("push: listing subscribers failed")
            return 0
        message = {"type": "event", "event": within_frame_limit(event)}
        queued = 0
        for connection_id in listeners:
            with self._lock:
                pending = self._queues.get(connection_id)
                if pending is None:
                    pending = self._queues[connection_id] = queue.Queue(self.queue_size)
                    threading.Thread(target=self._send_all, args=(connection_id, pending),
                                     name=f"push-{connection_id[:12]}", daemon=True).start()
            try:
                pending.put_nowait((topics, message))
                queued += 1
            except queue.Full:
                self._drop(connection_id, f"its queue of {self.queue_size} messages is full")
        return queued

    def _send_all(self, connection_id: str, pending: queue.Queue[Queued]) -> None:
        while True:
            try:
                topics, message = pending.get(timeout=self.idle_s)
            except queue.Empty:
                with self._lock:
                    if pending.empty() and self._queues.get(connection_id) is pending:
                        del self._queues[connection_id]  # idle: the next event starts anew
                        return
                continue
            try:
                if not self._still_listening(connection_id, topics):
                    continue  # unsubscribed or narrowed since it was queued (finally: done)
                delivered = self.pusher.send(connection_id, message)
            except Exception as error:  # a timeout or refusal: the client can't keep up
                self._drop(connection_id, f"a send failed: {type(error).__name__}")
                return
            finally:
                pending.task_done()
            if not delivered:  # gone already; Pusher.send forgot it
                with self._lock:
                    self._queues.pop(connection_id, None)
                return

    def _still_listening(self, connection_id: str, topics: list[str]) -> bool:
        try:
            return self.pusher._subscriptions.listens(connection_id, topics)
        except Exception:  # the registry is unreachable: skip rather than risk a wrong send
            logger.exception("push: checking %s's subscription failed", connection_id)
            return False

    def _drop(self, connection_id: str, why: str) -> None:
        with self._lock:
            if self._queues.pop(connection_id, None) is None:
                return
        logger.warning("push: dropping connection %s: %s", connection_id, why)
        self.dropped.append(connection_id)
        threading.Thread(target=self._hang_up, args=(connection_id,), daemon=True).start()

    def _hang_up(self, connection_id: str) -> None:
        try:
            self.pusher._subscriptions.disconnect(connection_id)
            self.pusher._api.delete_connection(ConnectionId=connection_id)
        except Exception:  # gone already, or the gateway is busy: it is forgotten either way
            logger.debug("push: closing %s failed", connection_id, exc_info=True)

    def drain(self, timeout_s: float = 5.0) -> bool:
        """Wait (bounded) until every queue is empty: a Lambda must not freeze with sends due."""
        deadline = threading.Event()
        timer = threading.Timer(timeout_s, deadline.set)
        timer.start()
        try:
            while not deadline.is_set():
                with self._lock:
                    if all(q.unfinished_tasks == 0 for q in self._queues.values()):
                        return True
                deadline.wait(0.01)
            return False
        finally:
            timer.cancel()
