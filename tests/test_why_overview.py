"""`why` with no MODEL: one line per model, fitted to the terminal's width."""

from __future__ import annotations

from pathlib import Path

import ollamalogs as L
from ollama_resident.logtimeline import read_timeline


def test_the_every_model_overview_hangs_each_answer_under_its_start(tmp_path: Path) -> None:
    # At 80 columns a 79-character name gives up its middle; answers wrap under themselves.
    from datetime import timedelta

    from ollama_resident import cells, logstory
    from ollama_resident import why as story

    long = "someverylongname-an-extremely-long-model-name-for-the-wrapping-tests"
    L.BLOBS[long] = "ab" * 32
    try:
        log = L.Log(debug=True, start=L.START)
        log.start().load(long, count=1, keep_alive="3s").load("tiny", count=2, first=False)
        log.wait(3).slog("DEBUG", "timer expired, expiring to unload", log.runner(long))
        log.chain(long)
        tl = read_timeline(lines=log.lines)
    finally:
        del L.BLOBS[long]
    now = log.t + timedelta(minutes=5)
    stories = []
    for name in {f.model for f in tl.facts if f.model}:
        journaled = story.build_story(name, [], now=now, limit=None)
        s = logstory.tell(
            name, journaled, tl, matches=lambda f, n=name: f.model == n, log=None, now=now
        )
        stories.append(s)
    text = logstory.render_overview(stories, since=L.START, now=now, width=80)
    lines = text.splitlines()
    assert all(cells.width(line) <= 80 for line in lines)
    rows = [line for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert len(rows) == 2
    (row,) = [r for r in rows if "…" in r]  # the long name, its middle left out
    assert row.split()[0].startswith("someverylong") and row.split()[0].endswith(":latest")
    start = 2 + 25 + 2  # the name column: a third of the width
    assert cells.width(row[:start]) == start and row[start] != " "
    follow = lines[lines.index(row) + 1]  # the answer goes on under its own start
    assert follow.startswith(" " * start) and follow[start] != " "
