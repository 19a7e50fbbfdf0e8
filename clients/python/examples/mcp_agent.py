"""An agent reaching its tools through Warden's MCP gateway, with the
official MCP Python SDK (`pip install mcp`): the README's walk-through.

    AGENT=<an agent token bound to "teller"> python mcp_agent.py [http://127.0.0.1:8181/mcp]

It lists its tools, looks an account up (Warden redacts the card number and
the SSN), tries a transfer in a currency the policy refuses (a tool error
naming the decision), then one large enough to need two reviewers: it
waits, printing Warden's progress notes, until they approve in the console
or with `POST /v0/executions/{id}/approvals`, and the transfer runs once.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def progress(done: float, total: float | None, message: str | None) -> None:
    print("…", message)


async def main(url: str) -> None:
    headers = {"Authorization": f"Bearer {os.environ['AGENT']}"}
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=600)) as http:
        async with Client(streamable_http_client(url, http_client=http)) as agent:
            print([t.name for t in (await agent.list_tools()).tools])
            r = await agent.call_tool("bank__lookup", {"account": "acct-1"})
            print(r.structured_content)
            r = await agent.call_tool("bank__transfer", {"amount": 50, "currency": "GBP", "to": "acct-9"})
            print(r.is_error, r.content[0].text)
            r = await agent.call_tool(
                "bank__transfer",
                {"amount": 5000, "currency": "EUR", "to": "acct-9"},
                progress_callback=progress,
            )
            print(r.is_error, r.content[0].text)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8181/mcp"))
