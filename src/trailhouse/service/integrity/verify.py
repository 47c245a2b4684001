"""Offline verification: signed checkpoints against events, and what exactly is wrong.

Inputs, all held by the verifier: verifier keys; checkpoints; the events under test (in log
order, as ``trailhouse log export`` writes them, or in any order, as the native export does); and,
optionally, a reference copy of the log (the entries a mirror kept, ``trailhouse verify --watch``).
The reference and the events are both checked against the checkpoints. Findings name the kind:

``checkpoint-invalid``  a checkpoint whose signature or shape does not verify
``forked``              two valid checkpoints that cannot both be true (same size, two roots; or a
                        log that matches one but not the other)
``truncated``           fewer leaves than a checkpoint commits to (deleted tail, an old backup)
``altered``             an event whose bytes differ from the logged ones
``missing``             a logged event absent from the events
``inserted``            an event that is in no checkpointed leaf
``reordered``           logged events in another order than the log's
``mismatch``            the events do not rebuild a checkpoint's root, and no reference says why
``file-missing`` / ``file-altered``  a delivered file a digest lists is absent or differs
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from ...model.event import event_id_of
from .checkpoint import Checkpoint, CheckpointError, open_checkpoint
from .merkle import Levels, leaf_hashes
from .note import Verifier

__all__ = ["Finding", "Report", "ndjson_lines", "verify_log"]

#: At most this many findings of one kind are listed one by one; the rest are counted.
MAX_LISTED = 100


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.detail}


@dataclass(slots=True)
class Report:
    checkpoints: int = 0
    events: int = 0
    verified_size: int = 0
    #: Events after the last checkpointed one (log order): newer than every checkpoint given.
    unverified: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, message: str, **detail: Any) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        if self.counts[kind] <= MAX_LISTED:
            self.findings.append(Finding(kind, message, detail))

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkpoints": self.checkpoints,
            "events": self.events,
            "verifiedSize": self.verified_size,
            "unverified": self.unverified,
            "problems": self.counts,
            "findings": [f.to_json() for f in self.findings],
        }


def open_checkpoints(
    notes: Iterable[tuple[str, bytes]], verifiers: list[Verifier], report: Report
) -> list[Checkpoint]:
    """The checkpoints that verify (each named by where it came from), forks among them reported."""
    good: list[Checkpoint] = []
    for name, note in notes:
        try:
            good.append(open_checkpoint(note, verifiers))
        except CheckpointError as exc:
            report.add("checkpoint-invalid", f"{name}: {exc}", source=name)
    report.checkpoints = len(good)
    seen: dict[tuple[str, int], bytes] = {}
    for cp in good:
        other = seen.setdefault((cp.origin, cp.size), cp.root)
        if other != cp.root:
            report.add(
                "forked",
                f"two signed checkpoints of {cp.origin} at size {cp.size} with different roots",
                origin=cp.origin,
                size=cp.size,
            )
    unique = {(cp.origin, cp.size, cp.root): cp for cp in good}
    return sorted(unique.values(), key=lambda cp: cp.size)


def _prefix_roots(leaves: list[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    levels = Levels(leaves)
    return {size: levels.root(size) for size in set(sizes) if size <= len(leaves)}


def verify_log(
    *,
    verifiers: list[Verifier],
    checkpoints: Iterable[tuple[str, bytes]],
    events: Iterable[bytes],
    in_log_order: bool = True,
    reference: Sequence[bytes] | None = None,
) -> Report:
    """Check ``events`` (bodies) against signed ``checkpoints``, using ``reference`` (the log's
    entries as a mirror kept them, in log order) to name exactly what differs.

    Without a reference, the events themselves must be the log in order; then what differs is
    named only as far as the checkpoints locate it.
    """
    report = Report()
    cps = open_checkpoints(checkpoints, verifiers, report)
    if reference is None:
        if not in_log_order:
            raise ValueError("events in any order need a reference log to be checked against")
        # Only the leaves are needed: the events are hashed as they are read, never kept.
        leaves = leaf_hashes(events)
        report.events = len(leaves)
        if not cps:
            report.add("checkpoint-invalid", "no checkpoint verifies: nothing can be checked")
            return report
        report.verified_size = _locate(leaves, cps, report, "the events")
        return report
    entries = list(events)
    report.events = len(entries)
    if not cps:
        report.add("checkpoint-invalid", "no checkpoint verifies: nothing can be checked")
        return report
    ref_leaves = leaf_hashes(reference)
    bad_before = len(report.findings)
    proven = _locate(ref_leaves, cps, report, "the reference log")
    if len(report.findings) > bad_before:
        return report  # a reference that does not verify names nothing reliably
    _diff(entries, reference[:proven], report, in_log_order=in_log_order)
    report.verified_size = proven if report.ok else 0
    return report


def _locate(leaves: list[bytes], cps: list[Checkpoint], report: Report, what: str) -> int:
    """Check ``leaves`` against each checkpoint; report where they stop matching. The size proven."""
    roots = _prefix_roots(leaves, (cp.size for cp in cps))
    proven, good_sizes, bad_sizes = 0, [], []
    for cp in cps:
        if cp.size > len(leaves):
            report.add(
                "truncated",
                f"{what} holds {len(leaves)} leaves; a signed checkpoint commits to {cp.size}",
                leaves=len(leaves),
                checkpointSize=cp.size,
            )
        elif roots[cp.size] == cp.root:
            good_sizes.append(cp.size)
            proven = max(proven, cp.size)
        else:
            bad_sizes.append(cp.size)
    if bad_sizes and good_sizes and max(good_sizes) > min(bad_sizes):
        report.add(
            "forked",
            f"{what} matches the signed checkpoint at size {max(good_sizes)} but not the one "
            f"at {min(bad_sizes)}: two signed histories disagree",
            sizes=[min(bad_sizes), max(good_sizes)],
        )
    elif bad_sizes:
        lo = max([s for s in good_sizes if s < min(bad_sizes)], default=0)
        report.add(
            "mismatch",
            f"{what} do not rebuild the signed root at size {min(bad_sizes)}: an event among "
            f"leaves {lo}..{min(bad_sizes) - 1} was altered, removed, inserted or moved",
            firstLeaf=lo,
            lastLeaf=min(bad_sizes) - 1,
        )
    return proven


def _diff(entries: list[bytes], reference: Sequence[bytes], report: Report, *, in_log_order: bool) -> None:
    """Name every difference between the events and the (verified) reference log."""
    ref_by_id: dict[str, int] = {}
    for position, entry in enumerate(reference):
        ref_by_id.setdefault(event_id_of(entry), position)
    ref_ids = {event_id_of(e) for e in reference}
    seen: set[str] = set()
    order: list[int] = []
    # In log order, events after the last one the reference holds are simply newer than the
    # latest checkpoint seen: not yet provable, not inserted (refresh the mirror to check them).
    tail = len(entries)
    if in_log_order:
        while tail and event_id_of(entries[tail - 1]) not in ref_by_id:
            tail -= 1
        report.unverified = len(entries) - tail
    for entry in entries[:tail]:
        event_id = event_id_of(entry)
        found = ref_by_id.get(event_id)
        if found is None:
            report.add(
                "inserted",
                f"event {event_id} is in no signed leaf of the log (inserted, or newer than the "
                "latest checkpoint seen: refresh the mirror to tell)"
                if not in_log_order
                else f"event {event_id} is in no signed leaf of the log",
                eventId=event_id,
            )
            continue
        seen.add(event_id)
        order.append(found)
        if entry != reference[found]:
            report.add(
                "altered",
                f"event {event_id} differs from leaf {found} of the log",
                eventId=event_id,
                leafIndex=found,
            )
    for index, entry in enumerate(reference):
        event_id = event_id_of(entry)
        if event_id in ref_ids and event_id not in seen:
            report.add(
                "missing", f"event {event_id} (leaf {index}) is missing", eventId=event_id, leafIndex=index
            )
            seen.add(event_id)
    if in_log_order:
        for a, b in zip(order, order[1:], strict=False):
            if b < a:
                report.add(
                    "reordered",
                    f"leaf {b} comes after leaf {a}: the events are not in the log's order",
                    leafIndex=b,
                    after=a,
                )


def _line_lists(blocks: Iterable[bytes]) -> Iterator[list[bytes]]:
    rest = b""
    for block in blocks:
        if rest:
            block = rest + block
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:
            yield _lines(block[: cut - 1])
    if rest:
        yield _lines(rest)


def _lines(text: bytes) -> list[bytes]:
    lines = text.split(b"\n")
    if b"\r" in text:
        lines = [line.rstrip(b"\r") for line in lines]
    if b"" in lines:  # blank lines
        lines = list(filter(None, lines))
    return lines


def ndjson_lines(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The lines of NDJSON read in blocks (a line may straddle two), without their line ends;
    blank lines skipped. Each block is split in one call and its lines handed on by C iterators:
    with no Python step per line, reading the export costs a fraction of hashing it."""
    return chain.from_iterable(_line_lists(blocks))


def split_events(data: bytes) -> list[bytes]:
    """The events of a delivered file's content, each as its exact bytes: a JSON array (split at
    its top-level commas, never re-serialised, so an event's bytes stay its leaf's entry) or NDJSON.
    """
    text = data.strip()
    if not text.startswith(b"["):
        return [line.strip() for line in text.splitlines() if line.strip()]
    events: list[bytes] = []
    depth, in_string, escaped, start = 0, False, False, 1
    for i in range(1, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in (0x7B, 0x5B):  # { [
            depth += 1
        elif c in (0x7D, 0x5D):  # } ]
            if depth == 0:  # the array's own closing bracket
                item = text[start:i].strip()
                if item:
                    events.append(item)
                return events
            depth -= 1
        elif c == 0x2C and depth == 0:  # a comma between events
            events.append(text[start:i].strip())
            start = i + 1
    raise ValueError("a delivered file's JSON array is not closed")
