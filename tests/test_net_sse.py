"""The server-sent events parser (:mod:`dodo_jupyter.net.sse`), fed bytes cut anywhere."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dodo_jupyter.net import sse
from dodo_jupyter.net.sse import Event, EventParser, EventTooLarge


def feed_all(parser: EventParser, *chunks: bytes) -> list[Event]:
    """Every event the chunks complete, in order."""
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return events


def parse(stream: bytes, **kwargs: int) -> list[Event]:
    return EventParser(**kwargs).feed(stream)


def bytewise(stream: bytes) -> list[bytes]:
    return [stream[i : i + 1] for i in range(len(stream))]


# -- fields -----------------------------------------------------------------------------


def test_a_plain_event() -> None:
    assert parse(b"data: hello\n\n") == [Event("message", "hello")]


def test_nothing_is_dispatched_before_the_blank_line() -> None:
    parser = EventParser()
    assert parser.feed(b"data: hello\n") == []
    assert parser.feed(b"\n") == [Event("message", "hello")]


def test_several_events_in_one_chunk_come_in_order() -> None:
    stream = b"data: 1\n\ndata: 2\n\nevent: x\ndata: 3\n\n"
    assert parse(stream) == [Event("message", "1"), Event("message", "2"), Event("x", "3")]


def test_event_types_default_to_message_and_do_not_carry_over() -> None:
    stream = (
        b"event: update\ndata: a\n\n"
        b"data: b\n\n"  # the type was reset by the dispatch
        b"event:\ndata: c\n\n"  # an empty type is "message"
        b"data: d\nevent: late\n\n"  # the type may come after the data
    )
    assert parse(stream) == [
        Event("update", "a"),
        Event("message", "b"),
        Event("message", "c"),
        Event("late", "d"),
    ]


def test_data_lines_are_joined_with_line_feeds() -> None:
    stream = b"data: first\ndata:\ndata: third\ndata\n\n"
    assert parse(stream) == [Event("message", "first\n\nthird\n")]


def test_an_event_with_empty_data_is_still_dispatched() -> None:
    assert parse(b"data:\n\n") == [Event("message", "")]
    assert parse(b"data\n\n") == [Event("message", "")]


def test_exactly_one_space_after_the_colon_is_removed() -> None:
    stream = b"data:no space\ndata: one\ndata:  two\ndata:\tTab\ndata: a: b:c\n\n"
    assert parse(stream) == [Event("message", "no space\none\n two\n\tTab\na: b:c")]
    assert parse(b"event:  spaced\ndata: x\n\n") == [Event(" spaced", "x")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": a comment\ndata: a\n:\n:data: not data\nfoo: bar\nData: wrong case\ndata: b\n\n"
    assert parse(stream) == [Event("message", "a\nb")]


def test_a_blank_line_without_data_dispatches_nothing_and_resets_the_type() -> None:
    parser = EventParser()
    assert parser.feed(b"\n\n: keep-alive\n\nevent: ping\n\n") == []
    assert parser.feed(b"id: 7\nretry: 10\n\n") == []
    assert parser.feed(b"data: x\n\n") == [Event("message", "x")]  # not "ping"


# -- line endings and chunking ------------------------------------------------------------


STREAM = ": hi\nevent: update\ndata: é\ndata: 中文 ☃\n\ndata: 😀 end\n\n"
EXPECTED = [Event("update", "é\n中文 ☃"), Event("message", "😀 end")]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings(ending: str) -> None:
    stream = STREAM.replace("\n", ending).encode()
    assert parse(stream) == EXPECTED
    assert feed_all(EventParser(), *bytewise(stream)) == EXPECTED


def test_mixed_line_endings() -> None:
    stream = b"data: a\r\ndata: b\rdata: c\n\r\n" + b"data: d\r\r" + b"data: e\n\n"
    assert parse(stream) == [
        Event("message", "a\nb\nc"),
        Event("message", "d"),
        Event("message", "e"),
    ]


def test_a_cr_lf_split_across_chunks_is_one_line_end() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r") == []  # the LF ended the same line as the CR
    assert parser.feed(b"\n\r") == [Event("message", "a\nb")]
    assert parser.feed(b"\ndata: c\r") == []  # the CR LF after the blank line is one end
    assert parser.feed(b"\r") == [Event("message", "c")]  # CR then CR: a blank line


def test_a_cr_at_the_end_of_a_chunk_then_a_new_line() -> None:
    parser = EventParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"data: b\r") == []  # not an LF: the CR alone ended the line
    assert parser.feed(b"\r") == [Event("message", "a\nb")]


def test_an_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    parser = EventParser()
    events = feed_all(parser, b"data: a\r", b"", b"\ndata: b\n\n")
    assert events == [Event("message", "a\nb")]


def test_empty_chunks_elsewhere_change_nothing() -> None:
    parser = EventParser()
    assert feed_all(parser, b"", b"data: a\n", b"", b"\n", b"") == [Event("message", "a")]


def test_chunks_cut_in_the_middle_of_a_line() -> None:
    parser = EventParser()
    assert parser.feed(b"da") == []
    assert parser.feed(b"ta: hel") == []
    assert parser.feed(b"lo\n\nevent: t") == [Event("message", "hello")]
    assert parser.feed(b"ype\ndata: x\n") == []
    assert parser.feed(b"\n") == [Event("type", "x")]


@pytest.mark.parametrize("cut", range(1, 4))
def test_a_multibyte_character_cut_across_chunks_decodes(cut: int) -> None:
    snowman_then_emoji = "data: ☃😀\n\n".encode()
    start = len(b"data: ")
    # cut inside the 3-byte snowman, or inside the 4-byte emoji
    for at in (start + cut, start + 3 + cut):
        parser = EventParser()
        events = feed_all(parser, snowman_then_emoji[:at], snowman_then_emoji[at:])
        assert events == [Event("message", "☃😀")], at
    assert feed_all(EventParser(), *bytewise(snowman_then_emoji)) == [Event("message", "☃😀")]


def test_a_leading_byte_order_mark_is_ignored() -> None:
    assert parse("\ufeffdata: a\n\n".encode()) == [Event("message", "a")]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert parse(b"data: a\xffb\n\n") == [Event("message", "a\ufffdb")]


# -- id and retry -------------------------------------------------------------------------


def test_id_sets_the_last_event_id_as_soon_as_it_is_read() -> None:
    parser = EventParser()
    assert parser.last_event_id is None
    assert parser.feed(b"data: a\nid: 42\n") == []
    assert parser.last_event_id == "42"  # before the event is dispatched
    assert parser.feed(b"\n") == [Event("message", "a")]
    parser.feed(b"id:  spaced\n")
    assert parser.last_event_id == " spaced"
    parser.feed(b"id\n")  # an empty id resets it
    assert parser.last_event_id == ""


def test_an_id_containing_nul_is_ignored() -> None:
    parser = EventParser()
    parser.feed(b"id: 1\n\n")
    assert parser.feed(b"id: 2\x003\ndata: x\n\n") == [Event("message", "x")]
    assert parser.last_event_id == "1"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 3000", 3000),
        (b"retry:0", 0),
        (b"retry: 0042", 42),
        (b"retry: 3s", None),
        (b"retry: -1", None),
        (b"retry: 1.5", None),
        (b"retry: ", None),
        (b"retry", None),
        (b"retry: 1 ", None),
        ("retry: \uff13".encode(), None),  # FULLWIDTH DIGIT THREE: a digit, not ASCII
    ],
)
def test_retry_takes_only_ascii_digits(line: bytes, expected: int | None) -> None:
    parser = EventParser()
    parser.feed(line + b"\n")
    assert parser.retry_ms == expected


def test_a_bad_retry_keeps_the_previous_one() -> None:
    parser = EventParser()
    parser.feed(b"retry: 500\nretry: soon\n\n")
    assert parser.retry_ms == 500


# -- size limit ---------------------------------------------------------------------------


def test_an_event_growing_past_the_limit_through_data_lines_is_refused() -> None:
    parser = EventParser(max_event_bytes=100)
    for _ in range(9):
        assert parser.feed(b"data: " + b"x" * 9 + b"\n") == []
    with pytest.raises(EventTooLarge, match="larger than 100 bytes"):
        parser.feed(b"data: " + b"x" * 20 + b"\n")


def test_the_limit_is_per_event() -> None:
    parser = EventParser(max_event_bytes=100)
    events = feed_all(parser, *[b"data: " + b"x" * 60 + b"\n\n"] * 10)
    assert events == [Event("message", "x" * 60)] * 10


def test_the_limit_counts_every_line_of_one_chunk() -> None:
    with pytest.raises(EventTooLarge):
        parse(b"data: xxxxxxxxxx\n" * 20 + b"\n", max_event_bytes=100)


def test_one_huge_unterminated_line_is_refused() -> None:
    with pytest.raises(EventTooLarge):
        parse(b"data: " + b"x" * 200, max_event_bytes=100)
    parser = EventParser(max_event_bytes=100)
    with pytest.raises(EventTooLarge):
        for _ in range(10):
            assert parser.feed(b"y" * 30) == []  # one line, never ended


def test_a_line_under_the_limit_may_wait_for_its_end() -> None:
    parser = EventParser(max_event_bytes=100)
    assert parser.feed(b"data: " + b"x" * 50) == []
    assert parser.feed(b"\n\n") == [Event("message", "x" * 50)]


def test_exported_members() -> None:
    assert sorted(sse.__all__) == ["Event", "EventParser", "EventTooLarge"]
    assert issubclass(EventTooLarge, ValueError)


# -- property: chunking never changes the result ------------------------------------------


@dataclass(frozen=True)
class Block:
    """An event as a stream writes it: optional type, id and retry, comments, data lines."""

    event: str | None
    data: tuple[str, ...]
    id: str | None
    retry: int | None
    comment: str | None


# Field values: any text without CR, LF or NUL (NUL would make an id be ignored).
value = st.text(st.characters(blacklist_characters="\r\n\x00", codec="utf-8"), max_size=12)
blocks = st.builds(
    Block,
    event=st.none() | value,
    data=st.lists(value, max_size=4).map(tuple),
    id=st.none() | value,
    retry=st.none() | st.integers(0, 10**6),
    comment=st.none() | value,
)
endings = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[Event], str | None, int | None]:
    """A valid stream, the events it holds, and its last id and retry."""
    lines: list[str] = []
    events: list[Event] = []
    last_id: str | None = None
    retry: int | None = None
    for block in draw(st.lists(blocks, max_size=6)):
        if block.comment is not None:
            lines.append(":" + block.comment)
        if block.event is not None:
            lines.append("event: " + block.event)
        for data in block.data:
            # "data:" without a space only when the value has no leading space to lose
            spaced = data.startswith(" ") or draw(st.booleans())
            lines.append(("data: " if spaced else "data:") + data)
        if block.id is not None:
            lines.append("id: " + block.id)
            last_id = block.id
        if block.retry is not None:
            lines.append(f"retry: {block.retry}")
            retry = block.retry
        lines.append("")
        if block.data:
            events.append(Event(block.event or "message", "\n".join(block.data)))
    text = ""
    previous = ""
    for line in lines:
        ending = draw(endings)
        if previous == "\r" and not line and ending == "\n":
            ending = "\r\n"  # CR then an LF-ended blank line would read as one CR LF
        text += line + ending
        previous = ending
    return text.encode(), events, last_id, retry


@settings(max_examples=300, deadline=None)
@given(streams(), st.data())
def test_any_chunking_gives_the_events_of_the_whole_stream(
    stream: tuple[bytes, list[Event], str | None, int | None], data: st.DataObject
) -> None:
    raw, expected, last_id, retry = stream
    whole = EventParser()
    assert whole.feed(raw) == expected
    assert (whole.last_event_id, whole.retry_ms) == (last_id, retry)

    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=20)))
    bounds = [0, *[c for c in cuts if c < len(raw)], len(raw)]
    chunks = [raw[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    assert b"".join(chunks) == raw
    cut = EventParser()
    assert feed_all(cut, *chunks) == expected
    assert (cut.last_event_id, cut.retry_ms) == (last_id, retry)


def test_a_byte_order_mark_split_across_chunks_is_skipped() -> None:
    parser = EventParser()
    assert parser.feed(b"\xef") == [] and parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: a\n\n") == [Event("message", "a")]
    # Only at the start of the stream.
    assert parser.feed("\ufeffdata: b\n\n".encode()) == []
