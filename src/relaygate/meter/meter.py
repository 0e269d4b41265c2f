"""Settle a call and write its usage record: the one place where a call's money is decided.

Every call that passed the gate ends here exactly once (``Call.finished``, which only the meter sets,
guards it), whatever the path: completed, refused, failed over to exhaustion, cut, timed out or abandoned
by the client; or it is handed over to a task, whose own record accounts for it when the task ends.
"""

from __future__ import annotations

from relaygate.billing.pricing import ImageBill, cost_of
from relaygate.billing.rules import EndReason, charges
from relaygate.billing.tokenizer import count_chat_prompt
from relaygate.core.usage import Usage
from relaygate.dialects.registry import dialect
from relaygate.meter.admission import Admission
from relaygate.meter.call import Call
from relaygate.meter.holds import Holds
from relaygate.storage.recorder import UsageRecord


def estimate_usage(call: Call, produced_tokens: int) -> Usage:
    """The offline count, when the upstream reported no usage: the prompt counted here (prompts in other
    dialects in their OpenAI form: system prompt, messages, tool definitions), the output as the caller
    counted it (``produced_tokens``: a stream tap's running count, or a whole answer's text counted)."""
    body = dialect(call.dialect).counted_prompt(call.body, call.model, call.stream)
    messages = body.get("messages")
    prompt = count_chat_prompt(messages if isinstance(messages, list) else [], call.model, body.get("tools"))
    return Usage(input_tokens=prompt, output_tokens=produced_tokens)


class Meter(Admission, Holds):
    """The one owner of the money: admission (price, reserve), task holds, and the end of every call."""

    async def finish(self, call: Call, reason: EndReason, *, status: int, usage: Usage | None = None,
                     produced_tokens: int = 0, delivered: bool = False, error_code: str | None = None,
                     estimated: Usage | None = None, image: ImageBill | None = None) -> None:
        """Settle the reservation and commit the record; raises ``RecorderError`` if it cannot be stored.

        ``usage`` is the upstream's report; without one, ``estimated`` (the use case's own offline count)
        or else the chat estimate of ``estimate_usage`` is billed, recorded as estimated: the prompt
        counted offline and ``produced_tokens`` as the output, the offline count of the generated text in
        the vocabulary of ``call.model`` (``billing.tokenizer.count_text``, or a stream's ``TokenTally``;
        the meter never sees the text, so a long stream costs no memory here). ``image`` says
        which images an image call produced, for per-image prices."""
        if call.finished:
            return
        record = self.account(call, reason, status=status, usage=usage, produced_tokens=produced_tokens,
                              delivered=delivered, error_code=error_code, estimated=estimated, image=image)
        self._log(record)
        await self._recorder.write(record)

    def account(self, call: Call, reason: EndReason, *, status: int, usage: Usage | None = None,
                produced_tokens: int = 0, delivered: bool = False, error_code: str | None = None,
                estimated: Usage | None = None, image: ImageBill | None = None,
                charged: int | None = None, span_ms: tuple[int, int] | None = None) -> UsageRecord:
        """Decide the call's money (once), settle its in-memory reservation, and return the record to
        store. ``finish`` stores it through the group commit; a task stores it in the same transaction
        that ends the task (``end_task``). ``charged`` is an amount decided when the task was accepted (a
        Midjourney action's price, possibly several): billed as it is, if at all. ``span_ms`` is a task's
        (submitted, ended) wall-clock time: its record is stamped with its submit and lasts until its end."""
        call.finished = True
        per_call = call.price is not None and call.price.per_call is not None
        billable = charges(reason, delivered=delivered, per_call=per_call)
        per_image = image is not None and call.price is not None and call.price.per_image is not None
        source = "upstream" if usage is not None else "none"
        if usage is None and billable and not per_call and not per_image:
            usage = estimated if estimated is not None else estimate_usage(call, produced_tokens)
            source = "estimated"
        usage = usage or Usage()
        if charged is not None:
            cost = charged if billable else 0
        else:
            cost = cost_of(call.price, usage, image) if billable and call.price is not None else 0
        if call.reservation is not None:
            self._ledger.settle(call.reservation, cost)
        images = image.count if image is not None and billable else 0
        return self._record(call, reason, status, usage, source, cost, error_code, images, span_ms)

    def refuse(self, call: Call) -> None:
        """End a call that relaygate itself refused before any upstream saw it: its reservation is
        released and no usage record is written (docs/billing.md)."""
        self.release(call)
        call.finished = True

    def hand_over_to_task(self, call: Call) -> None:
        """The call's money is its task's now: the hold was taken with the stored task (``hold``), and the
        task's own record settles it when the task ends (``end_task``); the call writes no record."""
        call.finished = True

    def _record(self, call: Call, reason: EndReason, status: int, usage: Usage, source: str, cost: int,
                error_code: str | None, images: int, span_ms: tuple[int, int] | None) -> UsageRecord:
        channel = call.channel
        if span_ms is None:
            created_ms, latency_ms = call.created_ms, call.elapsed_ms()
        else:
            created_ms, latency_ms = span_ms[0], span_ms[1] - span_ms[0]
        return UsageRecord(
            request_id=call.request_id, created_at_ms=created_ms, surface=call.surface, model=call.model,
            stream=call.stream, status=status, end_reason=reason.value, usage_source=source,
            key_id=call.key.id, key_name=call.key.name, upstream_model=call.upstream_model,
            channel_id=channel.id if channel else None, channel_name=channel.name if channel else None,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            cached_input_tokens=usage.cached_input_tokens, cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens, image_input_tokens=usage.image_input_tokens, cost_nano=cost,
            images=images, attempts=call.attempts, latency_ms=latency_ms,
            first_byte_ms=call.elapsed_ms(call.first_byte_at) if call.first_byte_at is not None else None,
            client_ip=call.client_ip, error_code=error_code, client_request_id=call.client_request_id,
        )
