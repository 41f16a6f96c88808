"""The unsubscribe button under every broadcast (``unsub:<broadcast id>``) and the way
back (``bcast:on``). Both work from any state: the reply is added, and a step in progress
(a complaint draft, say) is asked for again, untouched.

The broadcast id is checked against the outbox: only a citizen who was sent that
broadcast can have its button, so a forged or foreign payload is answered as a stale
button and changes nothing.
"""

from __future__ import annotations

from dialogue.flows.base import Context, Payload, State
from dialogue.flows.menu import main_menu
from dialogue.messages import Button

KINDS = frozenset({"unsub", "bcast"})


async def on_payload(ctx: Context, payload: Payload) -> None:
    """Handle an ``unsub:<id>`` or ``bcast:on`` button, whatever the current state."""
    if payload.kind == "unsub" and len(payload.args) == 1 and payload.arg.isdigit() \
            and await _was_sent(ctx, int(payload.arg)):
        await _set_opt_out(ctx, True)
        ctx.say(ctx._("You will no longer receive news broadcasts. Notices about your "
                      "complaints still come as before."),
                [[Button(ctx._("🔔 Receive news again"), "bcast:on")]])
    elif payload.kind == "bcast" and payload.args == ("on",):
        await _set_opt_out(ctx, False)
        ctx.say(ctx._("You will receive news broadcasts again."),
                main_menu(ctx) if ctx.state is State.IDLE else ())
    else:
        await ctx.stale()
        return
    if ctx.state is not State.IDLE:
        await ctx.prompt()  # carry on where the citizen was


async def _was_sent(ctx: Context, broadcast_id: int) -> bool:
    key = f"bc:{broadcast_id}:{ctx.citizen.id}"
    return any(m.dedup_key == key
               for m in await ctx.uow.outbox.find(citizen_id=ctx.citizen.id))


async def _set_opt_out(ctx: Context, value: bool) -> None:
    if ctx.citizen.broadcast_opt_out != value:
        ctx.citizen.broadcast_opt_out = value
        await ctx.uow.citizens.save(ctx.citizen)
