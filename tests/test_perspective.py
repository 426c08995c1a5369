from symposia.domain.models import BotConfig, Message, Run
from symposia.orchestration.perspective import messages_for
from symposia.providers.base import ChatMessage


def _run() -> Run:
    bots = [
        BotConfig("Ada", "scripted/echo", "You are Ada."),
        BotConfig("Bert", "scripted/echo", ""),
    ]
    run = Run(topic="Tabs or spaces?", bots=bots, max_turns=4)
    run.messages = [
        Message("assistant", "Ada", "Tabs.", bot_index=0, turn=0),
        Message("assistant", "Bert", "Spaces.", bot_index=1, turn=1),
        Message("assistant", "Ada", "", bot_index=0, turn=2),
    ]
    return run


def test_own_turns_are_assistant_and_others_are_named_users() -> None:
    run = _run()
    assert messages_for(run, 0) == [
        ChatMessage("system", "You are Ada."),
        ChatMessage("user", "Tabs or spaces?"),
        ChatMessage("assistant", "Tabs."),
        ChatMessage("user", "Bert: Spaces."),
    ]
    assert messages_for(run, 1) == [
        ChatMessage("user", "Tabs or spaces?"),
        ChatMessage("user", "Ada: Tabs."),
        ChatMessage("assistant", "Spaces."),
    ]
