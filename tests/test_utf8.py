from symposia.providers.utf8 import Utf8Joiner


def test_split_multibyte_character_is_held_back_until_complete() -> None:
    joiner = Utf8Joiner()
    euro = "€".encode()
    assert joiner.feed(b"price: " + euro[:1]) == "price: "
    assert joiner.feed(euro[1:2]) == ""
    assert joiner.feed(euro[2:] + b"5") == "€5"
    assert joiner.flush() == ""


def test_unfinished_character_at_the_end_becomes_replacement() -> None:
    joiner = Utf8Joiner()
    assert joiner.feed("😀".encode()[:2]) == ""
    assert joiner.flush() == "\ufffd"
