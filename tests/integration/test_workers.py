"""Several worker processes on one port: all serve, all record, and SIGTERM stops them cleanly."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from openai import OpenAI

from tests.helpers.gateway import Gateway

KEY = "sk-workers-test-key-0001"
CONFIG = {
    "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt"], "mock_chunk_delay_ms": 0}],
    "prices": {"mock-gpt": {"input": 1, "output": 2}},
    "keys": [{"name": "w", "key": KEY}],
}


def test_two_workers_serve_record_and_stop(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    gateway = gateway_factory(tmp_path, CONFIG, workers=2).start()
    client = OpenAI(base_url=gateway.url + "/v1", api_key=KEY, max_retries=0)

    def ask(i: int) -> str:
        reply = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": f"n{i}"}])
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(40)))
    assert answers == [f"Mock reply from mock-gpt: n{i}" for i in range(40)]

    assert gateway.stop() == 0
    db = sqlite3.connect(tmp_path / "data" / "relaygate.db")
    rows = db.execute("select count(*), count(distinct request_id), sum(cost_nano) from usage_records").fetchone()
    used = db.execute("select used_nano from api_keys where name = 'w'").fetchone()[0]
    assert rows[0] == 40 and rows[1] == 40
    assert used == rows[2] > 0

