"""PDF export figures (prints them; it is not a test): a 500-turn run rendered as the
server renders it, its time, page count and the process's peak memory.

    PYTHONPATH=src:. .venv/bin/python bench/export_pdf.py [--turns 500] [--repeat 3]

Each turn is about 60 words with one line in another script (Cyrillic, Greek, Arabic,
Hebrew, Chinese, Japanese, Korean, emoji), so font fallback and shaping are exercised.
Peak memory is ru_maxrss (the whole process: Python, the fonts, the document) and, with
--trace, tracemalloc's peak of Python allocations during one render (slower).
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

from tests.export_sample import sample_run

from symposia.export import run_transcript
from symposia.export.files import render_json
from symposia.export.markdown import render_markdown
from symposia.export.pdf import render_pdf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    transcript = run_transcript(sample_run(args.turns))
    text_chars = sum(len(m.content) for m in transcript.messages)
    print(f"{args.turns} turns, {text_chars} characters of text")
    for name, render in (("json", render_json), ("markdown", render_markdown)):
        started = time.perf_counter()
        size = len(render(transcript))
        print(f"{name}: {time.perf_counter() - started:.2f} s, {size} bytes")
    for attempt in range(1, args.repeat + 1):
        started = time.perf_counter()
        pdf = render_pdf(transcript)
        elapsed = time.perf_counter() - started
        pages = pdf.count(b"/Type /Page\n")
        print(f"pdf #{attempt}: {elapsed:.2f} s, {len(pdf) / 1e6:.2f} MB, {pages} pages")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the process (ru_maxrss): {peak_mb:.0f} MB")
    if args.trace:
        tracemalloc.start()
        render_pdf(transcript)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"tracemalloc peak during one render: {peak / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
