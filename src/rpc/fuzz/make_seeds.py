#!/usr/bin/env python3
"""Writes the seed corpus of rpc_peer_fuzz (src/rpc/fuzz/peer_fuzz.cc).

Each seed is a list of records (type, clock steps, text-format message),
encoded with protoc into [kind][length LE16][bytes] records. Run from the
repository root: src/rpc/fuzz/make_seeds.py (needs protoc).
"""
import pathlib
import struct
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[3]
OUT = ROOT / "src/rpc/fuzz/corpus"

TYPES = {
    "MembershipMessage": 0, "RebuildChunkP": 1, "MailMapUpdate": 2, "ReplicaUpdate": 3,
    "LookupRequest": 4, "StoreRequest": 5, "DeleteRequest": 6, "FlagsRequest": 7,
    "WatchRequest": 8, "FolderRequest": 9, "UserOp": 10, "RetireRequest": 11,
    "AntiEntropyCompareRequest": 12, "FolderReply": 13, "ReplicaAck": 14,
    "AntiEntropyCompareReply": 15,
}

HDR = "header { version: 1 from: 2 view_epoch: 4294967298 entry_epoch: 4294967298 }"
N2 = 'from { id: 2 incarnation: 1 address: "n2:7000" name: "n2" }'
ID = r'"\001\002\003\004\005\006\007\010\011\012\013\014\015\016\017\020"'
MAP = "user_map { " + " ".join("managers: %d" % (1 + b % 2) for b in range(8)) + " " + \
      " ".join("epochs: 4294967298" for _ in range(8)) + " }"
VIEW = ('epoch: 4294967298 members { id: 1 incarnation: 1 address: "n1:7000" name: "n1" } '
        'members { id: 2 incarnation: 1 address: "n2:7000" name: "n2" } ' + MAP + " joined: 2")

SEEDS = {
    # A peer probes, the node runs a round, the peer accepts and commits a
    # two-node view; then it announces users and reports a fragment.
    "membership_join": [
        ("MembershipMessage", 0, f"{HDR} {N2} probe {{}}"),
        ("MembershipMessage", 2, f"{HDR} {N2} accept {{ proposal: 4294967297 }}"),
        ("MembershipMessage", 5, f"{HDR} {N2} view_epoch: 4294967298 commit {{ {VIEW} }}"),
        ("MembershipMessage", 3, f"{HDR} {N2} view_epoch: 4294967298 ping {{}}"),
        ("RebuildChunkP", 0, f'{HDR} view_epoch: 4294967298 seq: 0 total: 1 '
         'buckets { bucket: 0 entry_epoch: 4294967298 stamp: 7 users { user: "alice" '
         'has_fragment: true profile { user: "alice" } } }'),
        ("MailMapUpdate", 0, f'{HDR} user: "alice" node: 2 add: true stamp: 9'),
        ("LookupRequest", 0, f'{HDR} user: "alice"'),
    ],
    "membership_propose_reject": [
        ("MembershipMessage", 1, f"{HDR} {N2} propose: 8589934594"),
        ("MembershipMessage", 1, f"{HDR} {N2} reject {{ proposal: 4294967297 seen: 8589934594 "
         "in_round: true }"),
        ("MembershipMessage", 15, f"{HDR} {N2} removed {{}}"),
    ],
    "replicate_profile": [
        ("ReplicaUpdate", 0, f'{HDR} kind: 2 user: "bob" profile {{ user: "bob" }}'),
        ("ReplicaUpdate", 0, f'{HDR} kind: 1 user: "bob" meta {{ id: {ID} size: 3 }} body: "abc" '
         "takeover: 3"),
    ],
    "data_path": [
        ("StoreRequest", 0, f'{HDR} messages {{ user: "bob" meta {{ id: {ID} size: 2 }} '
         'mail_map: 2 } body: "hi"'),
        ("DeleteRequest", 0, f'{HDR} user: "bob" ids: {ID} folder: 0'),
        ("FlagsRequest", 0, f'{HDR} user: "bob" folder: 1 changes {{ id: {ID} flags: "\\\\Seen" '
         "mode: 3 from_uid: 4 to_uid: 9 }"),
        ("WatchRequest", 0, f"{HDR} slots: 5 versions: 7 wait_ms: 100"),
        ("FolderRequest", 0, f'{HDR} user: "bob" kind: RELEASE_UIDS folder_id: 3 '
         "uids { first: 1 count: 2 }"),
        ("UserOp", 0, f'{HDR} kind: SET_PASSWORD user: "bob" password_hash: "x"'),
        ("RetireRequest", 0, f'{HDR} objects {{ kind: 2 user: "bob" hlc: 5 }}'),
        ("AntiEntropyCompareRequest", 0, f'{HDR} slot: 3 items {{ kind: 1 user: "bob" '
         f"folder: 1 id: {ID} hlc: 6 }}"),
    ],
    "replies": [
        ("FolderReply", 0, 'header { code: 5 message: "not found" } folders { uidnext: 4 }'),
        ("ReplicaAck", 0, "header { code: 99 } held_hlc: 3"),
        ("AntiEntropyCompareReply", 0, 'header { code: -1 } want { kind: 2 user: "x" }'),
    ],
}


def encode(message, text):
    return subprocess.run(
        ["protoc", f"--encode=porcupine.rpc.{message}", f"-I{ROOT / 'src'}", "rpc/cluster.proto"],
        input=text.encode(), capture_output=True, check=True).stdout


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, records in SEEDS.items():
        data = b""
        for message, steps, text in records:
            payload = encode(message, text)
            data += struct.pack("<BH", TYPES[message] | (steps << 4), len(payload)) + payload
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
