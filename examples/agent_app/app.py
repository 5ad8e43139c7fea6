"""The example agent: asks the MCP clock for the time, then streams the model's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

from modelwire.agent import AgentApp, Msg, SessionContext


class ClockAgent(AgentApp):
    async def on_startup(self) -> None:
        # MCP tools are in the runtime's tool registry, next to any others.
        print(f"clock-agent ready: models {self.runtime.models.keys()}, tools {self.runtime.tools.names()}")

    async def __call__(self, msg: Msg, ctx: SessionContext) -> AsyncIterator[Msg]:
        turns = ctx.state.get("turns", 0) + 1
        ctx.state["turns"] = turns  # kept per session by the session store
        outputs = await self.runtime.tools.call("current_time", {"timezone": "UTC"}, ctx.agent_context())
        now = outputs.get("result", outputs)
        yield Msg({"tool": "current_time", "result": now}, role="tool", name="current_time")
        prompt = f"It is {now}. The user says: {msg.content}"
        async for piece in self.runtime.models.main.respond(prompt, system="You are a concise clock assistant."):
            yield Msg(piece)
        yield Msg({"turn": turns}, role="system")
