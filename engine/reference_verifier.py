"""A reference verifier of an ``opcatflow audit export`` (JSON Lines) against a checkpoint.

Standalone on purpose: the Python standard library, and ``cryptography`` for the Ed25519
signature only, none of opcatflow. It follows docs/audit.md step by step, so whoever checks
the trail in another language has a short program to compare theirs with::

    python -m opcatflow.engine.reference_verifier audit.jsonl --checkpoint checkpoint.json

Exit 0: intact (anchored to the checkpoint) or, with no checkpoint, unanchored; exit 8: a
break, the first one printed with its position; exit 2: an unreadable file or checkpoint.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from datetime import datetime, timedelta
from typing import Any

GENESIS = "0" * 64
COMMIT_GRACE = timedelta(minutes=10)
BROKEN, USAGE = 8, 2


def canonical(value: Any) -> bytes:
    """Keys sorted, ``,`` and ``:`` with no spaces, UTF-8 without escapes (RFC 8785 for
    text, integers and null)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def record_hash(r: dict[str, Any]) -> str:
    at = datetime.fromisoformat(r["at"]).isoformat(timespec="microseconds")
    content: list[Any] = [
        r["instance_id"], r["seq"], at, r["actor"], r["role"], r["workflow_id"],
        r["workflow_version"], r["trigger"], r["from_state"], r["to_state"], r["outcome"],
        r["reason"], r["changes_text"], r["prev_hash"],
    ]  # fmt: skip
    if r["format"] >= 4:
        content.append(r["state_hash"])
    if r["format"] != 1:
        content.append(r["format"])
    return hashlib.sha256(canonical(content)).hexdigest()


def next_root(root: str, position: int, digest: str) -> str:
    return hashlib.sha256(f"{root}:{position}:{digest}".encode()).hexdigest()


def read_checkpoint(path: str) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    with open(path, encoding="utf-8") as fh:
        doc = json.load(fh)
    body = doc["checkpoint"]
    key = bytes.fromhex(body["key"].removeprefix("ed25519:"))
    Ed25519PublicKey.from_public_bytes(key).verify(
        base64.b64decode(doc["signature"]), canonical(body)
    )  # raises InvalidSignature
    return dict(body)


def verify(records: list[dict[str, Any]], checkpoint: dict[str, Any] | None) -> str | None:
    """The first problem found (``None``: none), in the order of docs/audit.md."""
    chains: dict[str, tuple[int, str]] = {}
    for r in sorted(records, key=lambda r: (r["instance_id"], r["seq"])):
        seq, prev = chains.get(r["instance_id"], (0, GENESIS))
        where = f"position {r['position']} (instance {r['instance_id']}, seq {r['seq']})"
        if r["seq"] != seq + 1:
            return f"{where}: expected seq {seq + 1}"
        if r["prev_hash"] != prev:
            return f"{where}: previous-hash link does not match"
        if record_hash(r) != r["hash"]:
            return f"{where}: content does not match its hash"
        chains[r["instance_id"]] = (r["seq"], r["hash"])
    root, expected = GENESIS, 1
    for r in sorted(records, key=lambda r: r["position"]):
        if r["position"] != expected:
            return f"position {expected}: missing"
        root = next_root(root, expected, r["hash"])
        if checkpoint is not None:
            if expected == checkpoint["size"] and root != checkpoint["root"]:
                return f"position {expected}: the root differs from the checkpoint's"
            signed = datetime.fromisoformat(checkpoint["time"])
            stamped = datetime.fromisoformat(r["at"])
            if expected > checkpoint["size"] and stamped < signed - COMMIT_GRACE:
                return f"position {expected}: stamped before the checkpoint, positioned after"
        expected += 1
    if checkpoint is not None and expected - 1 < checkpoint["size"]:
        return f"position {expected}: the trail ends before the checkpoint's size"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export", help="an `opcatflow audit export` file (JSON Lines)")
    parser.add_argument("--checkpoint", help="a checkpoint file from `opcatflow audit checkpoint`")
    args = parser.parse_args(argv)
    try:
        with open(args.export, encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        checkpoint = read_checkpoint(args.checkpoint) if args.checkpoint else None
    except Exception as err:  # a reference tool: any unreadable input is one message
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return USAGE
    problem = verify(records, checkpoint)
    if problem is not None:
        print(f"broken: {problem}")
        return BROKEN
    status = "intact" if checkpoint is not None else "unanchored"
    print(f"{status}: {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
