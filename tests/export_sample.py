"""A deterministic run and conversation for the export tests and bench/export_pdf.py: fixed
ids and times, every script the PDF must draw, an emoji, code with backtick fences, a
partial and an error turn, estimated and reported usage, start settings and two edits, a
verdict, routing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from symposia.domain.models import (
    BotConfig,
    BotEdit,
    Conversation,
    Message,
    MessageStatus,
    Panel,
    PanelAgent,
    Run,
    RunStatus,
    TurnUsage,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# One line per script the PDF must show with real glyphs.
SCRIPTS = {
    "latin": "Ça déménage, naïve façade",
    "cyrillic": "Съешь же ещё этих мягких булок",
    "greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία",
    "arabic": "نص حكيم له سر قاطع",
    "hebrew": "דג סקרן שט בים מאוכזב",
    "chinese": "我能吞下玻璃而不伤身体",
    "japanese": "いろはにほへと ちりぬるを",
    "korean": "다람쥐 헌 쳇바퀴에 타고파",
    "emoji": "🎉",
}

CODE_TURN = (
    "Here is code:\n\n```python\nprint('hi')\n```\n\nand a ```` fence ```` run.\n  indented line"
)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _turn(turn: int, bot: int, bots: list[BotConfig], content: str, **extra: object) -> Message:
    usage = TurnUsage(
        prompt_tokens=100 + turn,
        completion_tokens=20 + turn,
        estimated=turn % 2 == 1,
        time_to_first_token_ms=120.0,
        total_ms=900.0,
    )
    fields: dict[str, object] = {
        "role": "assistant",
        "author": bots[bot].name,
        "content": content,
        "model": bots[bot].model,
        "bot_index": bot,
        "turn": turn,
        "usage": usage,
        "cost_usd": round((100 + turn) * 1e-6 + (20 + turn) * 4e-6, 8),
        "id": f"m{turn:04d}",
        "created_at": _at(10 * turn),
        "completed_at": _at(10 * turn + 5),
        **extra,
    }
    return Message(**fields)  # type: ignore[arg-type]


def sample_bots() -> list[BotConfig]:
    return [
        BotConfig(
            "Optimist", "openai/gpt-4o-mini", "You argue for.\nBe brief.", 0.7, 256, ("x/y",)
        ),
        BotConfig("Скептик", "anthropic/claude-3-5-haiku", "You argue against.", 0.2, 300),
    ]


def sample_run(turns: int | None = None) -> Run:
    """With `turns`, that many plain turns (for the bench); else the golden run."""
    bots = sample_bots()
    if turns is not None:
        texts = list(SCRIPTS.values())
        messages = [
            _turn(t, t % 2, bots, f"Turn {t}: {texts[t % len(texts)]}\n" + "Words. " * 60)
            for t in range(turns)
        ]
    else:
        lines = "\n".join(f"{name}: {text}" for name, text in SCRIPTS.items())
        messages = [
            _turn(0, 0, bots, "Opening.\nLine two\n\n" + lines),
            Message(
                role="user",
                author="Ana",
                content="Think of *the* cost <b>.",
                turn=1,
                id="said01",
                created_at=_at(12),
            ),
            _turn(1, 1, bots, CODE_TURN),
            _turn(2, 0, bots, "Cut off mid", status=MessageStatus.PARTIAL),
            _turn(3, 1, bots, "", status=MessageStatus.ERROR, usage=None, cost_usd=None),
        ]
    return Run(
        topic="Should # cities ban cars?\nDiscuss `both` sides.",
        bots=bots,
        max_turns=turns or 4,
        strategy="rounds",
        status=RunStatus.COMPLETED,
        messages=messages,
        stop_reason="max turns reached",
        owner="alice",
        id="run0123456789abcdef",
        created_at=T0,
        started_at=_at(1),
        finished_at=_at(10 * (turns or 4) + 9),
        policy_config={"rounds": 2, "aggregation": "judge"},
        policy_state={"rounds_done": 2, "verdict": {"winner": "Optimist", "reason": "clearer"}},
        termination={"max_turns": 4, "max_cost_usd": 1.5},
        ended_by="max_turns",
        parent_id="parent0001",
        branch_turn=1,
        edits=[
            BotEdit(1, 1, {"temperature": 0.2}, _at(15), event=9, turn=2),
            BotEdit(2, 1, {"system_prompt": "You argue against."}, _at(26), event=14, turn=3),
        ],
        start_bots=sample_start_bots(),
    )


def sample_start_bots() -> list[BotConfig]:
    """The bots as the run started: Скептик hotter and harsher, until its two edits."""
    optimist, skeptic = sample_bots()
    skeptic.temperature, skeptic.system_prompt = 0.9, "You argue against, harshly."
    return [optimist, skeptic]


def sample_conversation() -> tuple[Conversation, list[Message]]:
    panel = Panel(
        agents=(
            PanelAgent("billing", "Invoices and refunds", "openai/gpt-4o-mini", "Be exact."),
            PanelAgent("tech", "Bugs", "anthropic/claude-3-5-haiku"),
        ),
    )
    conversation = Conversation(
        default_model="openai/gpt-4o",
        title="Refund для заказа №42",
        system_prompt="Be kind.",
        owner="alice",
        panel=panel,
        id="conv0123456789abcdef",
        created_at=T0,
        updated_at=_at(30),
        message_count=2,
    )
    messages = [
        Message(
            role="user", author="user", content="Where is my refund? 🤔", id="q1", created_at=_at(1)
        ),
        Message(
            role="assistant",
            author="billing",
            content="It left on Monday.\n\n- step 1\n- step 2",
            model="openai/gpt-4o-mini",
            usage=TurnUsage(12, 9, estimated=False),
            cost_usd=0.000007,
            id="a1",
            created_at=_at(2),
            completed_at=_at(4),
            routing={"agent": "billing", "reason": "a refund", "attempts": 1, "fallback": False},
        ),
    ]
    return conversation, messages
